// Package bench is treecast's benchmark harness: scenarios that push objects through real
// agents, on loopback or on the network testbed of package bench/testbed, and the reports
// and plots made from their measurements.
package bench
