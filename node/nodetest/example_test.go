package nodetest_test

import (
	"context"
	"fmt"

	"github.com/treecast/treecast/node"
	"github.com/treecast/treecast/node/nodetest"
)

// Start a four-agent cluster in racks r0 and r1, and push an object to rack r1.
func ExampleStart() {
	ctx := context.Background()
	c, err := nodetest.Start(ctx, 4, nodetest.Options{
		Labels: func(i int) map[string]string { return map[string]string{"rack": fmt.Sprintf("r%d", i%2)} },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	path, _ := c.WriteFile(0, "obj.bin", []byte("some bytes"))
	rep, err := c.Agents[0].Push(ctx, node.Object{Path: path}, "rack=r1", node.PushOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rep.Receivers {
		got, _ := c.Read(r.Receiver, rep.Digest)
		fmt.Printf("%s verified=%v %q\n", r.Receiver, r.OK, got)
	}
	// Output:
	// a01 verified=true "some bytes"
	// a03 verified=true "some bytes"
}
