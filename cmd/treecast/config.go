package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// The agent's configuration: YAML files whose keys are the names of the agent command's
// flags (--config FILE, repeated or comma-separated, or the TREECAST_CONFIG variable; a key
// of a later file wins over the same key of an earlier one), TREECAST_* environment
// variables named after the same flags, and the flags themselves. For each flag the first of
// these that gives a value wins:
//
//	the command line  >  TREECAST_<FLAG> (upper case, '-' as '_')  >  the files  >  the default
//
// The mapping is built from the command's flag set when the command runs, so a flag added to
// the agent command is a configuration key and an environment variable with no further code.
// A key of a file that names no flag is an error, and so is a value the flag does not
// accept; both messages name the file, the line, the key and the value. An environment
// variable that is set but empty counts as unset.
//
// Values in a file are YAML scalars (strings, numbers, booleans), lists for list flags
// (join, channels, labels; a comma-separated string is accepted too, as on the command line)
// and, for key=value lists such as labels, mappings:
//
//	name: node-1
//	join: [10.0.0.1:7946, 10.0.0.2:7946]
//	labels: {dc: east, rack: r12}
//
// A null value (a key with nothing after the colon) keeps the flag's default.

const (
	// envPrefix starts every environment variable of the agent's configuration.
	envPrefix = "TREECAST_"
	// configEnv names the configuration files (comma-separated) when --config is not given.
	configEnv = envPrefix + "CONFIG"
	// maxConfigBytes bounds the configuration file read.
	maxConfigBytes = 1 << 20
)

// notConfigKeys are the flags that are not configuration keys.
var notConfigKeys = map[string]bool{"help": true, "config": true, "print-config": true}

// bindConfig adds --config and --print-config to cmd and sets, before cmd runs (and before
// cobra checks required flags), every flag not given on the command line from the
// environment or the configuration file. It keeps cmd's own PreRunE, run after. The caller
// calls [printConfigIfAsked] once the flags are validated.
func bindConfig(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSlice("config", nil, "YAML configuration files whose keys are this command's flag names, a key of a later file winning (env "+configEnv+"); flags and "+envPrefix+"* variables override them")
	f.Bool("print-config", false, "print the effective configuration as YAML (the input of --config) and exit")
	cmd.Long += `

Configuration: every flag is also a key of the --config YAML files (name: n1, join: [a:7946],
labels: {rack: r1}; of several files, the later wins) and an environment variable
(` + envPrefix + `NAME, ` + envPrefix + `GOSSIP_ADVERTISE, ...). A flag on the command line wins over the variable,
which wins over the files, which win over the default. --print-config prints the result,
after validation, and exits.`
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if err := applyConfig(c.Flags(), os.LookupEnv); err != nil {
			return err
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// envName is the environment variable of the flag named name: TREECAST_GOSSIP_ADVERTISE for
// gossip-advertise.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configEntry is one key of the configuration file.
type configEntry struct {
	path  string
	line  int
	value *yaml.Node
}

// applyConfig sets the flags of fs not changed on the command line from the variables lookup
// finds or else from the configuration files (--config, or the TREECAST_CONFIG variable; of
// several files, a key of a later one wins). Each flag is set at most once, so list flags
// are replaced, never appended to. Cost: one read of each file.
func applyConfig(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	paths, _ := fs.GetStringSlice("config")
	if !fs.Changed("config") {
		if v, ok := lookupSet(lookup, configEnv); ok {
			var err error
			if paths, err = splitCSV(v); err != nil {
				return fmt.Errorf("environment %s=%q: %w", configEnv, v, err)
			}
		}
	}
	file := map[string]configEntry{}
	for _, path := range paths {
		entries, err := loadConfigFile(path, fs)
		if err != nil {
			return err
		}
		for k, e := range entries {
			file[k] = e
		}
	}
	var err error
	fs.VisitAll(func(fl *pflag.Flag) {
		if err != nil || notConfigKeys[fl.Name] || fl.Changed {
			return
		}
		if v, ok := lookupSet(lookup, envName(fl.Name)); ok {
			if e := setFlagString(fl, v); e != nil {
				err = fmt.Errorf("environment %s=%q (key %q): %w", envName(fl.Name), v, fl.Name, e)
			}
			return
		}
		if e, ok := file[fl.Name]; ok {
			if set := setFlagNode(fl, e.value); set != nil {
				err = fmt.Errorf("config %s: line %d: key %q: value %s: %w", e.path, e.line, fl.Name, nodeText(e.value), set)
			}
		}
	})
	return err
}

// lookupSet returns the variable's value when it is set and not empty.
func lookupSet(lookup func(string) (string, bool), name string) (string, bool) {
	v, ok := lookup(name)
	return v, ok && v != ""
}

// loadConfigFile reads a configuration file: one YAML document, a mapping whose keys name
// flags of fs. Unknown and repeated keys are errors naming the key and its line.
func loadConfigFile(path string, fs *pflag.FlagSet) (map[string]configEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, maxConfigBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	entries := map[string]configEntry{}
	if doc.Kind == 0 { // empty file
		return entries, nil
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return entries, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config %s: line %d: want a mapping of keys (flag names) to values, not %s", path, top.Line, kindName(top))
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("config %s: line %d: a key must be a flag name, not %s", path, k.Line, kindName(k))
		}
		if fl := fs.Lookup(k.Value); fl == nil || notConfigKeys[k.Value] {
			return nil, fmt.Errorf("config %s: line %d: unknown key %q (keys are the flag names: %s)", path, k.Line, k.Value, strings.Join(configKeys(fs), ", "))
		}
		if prev, dup := entries[k.Value]; dup {
			return nil, fmt.Errorf("config %s: line %d: key %q repeats line %d", path, k.Line, k.Value, prev.line)
		}
		entries[k.Value] = configEntry{path: path, line: k.Line, value: v}
	}
	return entries, nil
}

// configKeys lists the configuration keys of fs, sorted.
func configKeys(fs *pflag.FlagSet) []string {
	var keys []string
	fs.VisitAll(func(fl *pflag.Flag) {
		if !notConfigKeys[fl.Name] {
			keys = append(keys, fl.Name)
		}
	})
	sort.Strings(keys)
	return keys
}

// setFlagString sets fl from a string as the command line would give it; a list flag takes
// a comma-separated list and is replaced.
func setFlagString(fl *pflag.Flag, s string) error {
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		items, err := splitCSV(s)
		if err != nil {
			return err
		}
		return replaceSlice(fl, sv, items)
	}
	if err := fl.Value.Set(s); err != nil {
		return err
	}
	fl.Changed = true
	return nil
}

// setFlagNode sets fl from a YAML value: a scalar as on the command line, a list item by
// item, a mapping as key=value items.
func setFlagNode(fl *pflag.Flag, n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil // keep the default
		}
		return setFlagString(fl, n.Value)
	case yaml.SequenceNode, yaml.MappingNode:
		var items []string
		if n.Kind == yaml.SequenceNode {
			for _, it := range n.Content {
				if it.Kind != yaml.ScalarNode {
					return fmt.Errorf("a list item is %s, want a scalar", kindName(it))
				}
				items = append(items, it.Value)
			}
		} else {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
					return errors.New("want a mapping of scalars (key: value)")
				}
				items = append(items, k.Value+"="+v.Value)
			}
		}
		if sv, ok := fl.Value.(pflag.SliceValue); ok {
			return replaceSlice(fl, sv, items)
		}
		if fl.Value.Type() == "stringToString" {
			return setFlagString(fl, strings.Join(items, ","))
		}
		return fmt.Errorf("is %s, but the flag takes one %s", kindName(n), fl.Value.Type())
	default:
		return fmt.Errorf("is %s, want a scalar, a list or a mapping", kindName(n))
	}
}

func replaceSlice(fl *pflag.Flag, sv pflag.SliceValue, items []string) error {
	if err := sv.Replace(items); err != nil {
		return err
	}
	fl.Changed = true
	return nil
}

// splitCSV splits a comma-separated list as pflag's list flags do (quotes allowed).
func splitCSV(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	return csv.NewReader(strings.NewReader(s)).Read()
}

// kindName names a YAML node's kind for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	default:
		return "a scalar"
	}
}

// nodeText renders a YAML value on one line for error messages: "scalar", [a, b],
// {k: v}.
func nodeText(n *yaml.Node) string {
	var parts []string
	switch n.Kind {
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.SequenceNode:
		for _, it := range n.Content {
			parts = append(parts, itemText(it))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			parts = append(parts, itemText(n.Content[i])+": "+itemText(n.Content[i+1]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		return kindName(n)
	}
}

// itemText renders an item of a list or mapping: a scalar as written, else its kind.
func itemText(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return "<" + kindName(n) + ">"
}

// printConfigIfAsked writes the effective configuration of cmd's flags as YAML to cmd's
// output when --print-config is set, and reports whether it did (the command then exits
// with the error returned). The output is itself a valid --config file.
func printConfigIfAsked(cmd *cobra.Command) (bool, error) {
	if ok, _ := cmd.Flags().GetBool("print-config"); !ok {
		return false, nil
	}
	b, err := effectiveConfig(cmd.Flags())
	if err != nil {
		return true, err
	}
	_, err = cmd.OutOrStdout().Write(b)
	return true, err
}

// effectiveConfig renders the values of fs's configuration keys as a YAML mapping, in the
// order of the keys, typed as the flags are.
func effectiveConfig(fs *pflag.FlagSet) ([]byte, error) {
	m := &yaml.Node{Kind: yaml.MappingNode,
		HeadComment: "effective configuration: flags > " + envPrefix + "* variables > config files > defaults"}
	for _, name := range configKeys(fs) {
		fl := fs.Lookup(name)
		k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}
		if fl.Usage != "" {
			k.HeadComment = fl.Usage
		}
		m.Content = append(m.Content, k, flagNode(fl))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{m}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// flagNode is the YAML value of a flag: a list for list flags, a mapping for key=value maps,
// a typed scalar otherwise.
func flagNode(fl *pflag.Flag) *yaml.Node {
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
	if sv, ok := fl.Value.(pflag.SliceValue); ok {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, it := range sv.GetSlice() {
			seq.Content = append(seq.Content, str(it))
		}
		if len(seq.Content) == 0 {
			seq.Style = yaml.FlowStyle
		}
		return seq
	}
	t := fl.Value.Type()
	switch {
	case t == "bool":
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fl.Value.String()}
	case t == "count" || strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fl.Value.String()}
	case strings.HasPrefix(t, "float"):
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: fl.Value.String()}
	case t == "stringToString":
		mp := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		items, _ := splitCSV(strings.TrimSuffix(strings.TrimPrefix(fl.Value.String(), "["), "]"))
		sort.Strings(items)
		for _, kv := range items {
			k, v, _ := strings.Cut(kv, "=")
			mp.Content = append(mp.Content, str(k), str(v))
		}
		return mp
	default:
		return str(fl.Value.String())
	}
}
