package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxDecodeSteps bounds the work of one decode, so that aliases and merge
// keys that refer to each other many times over cannot blow up.
const maxDecodeSteps = 1 << 18

var (
	durationType = reflect.TypeFor[time.Duration]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	appType      = reflect.TypeFor[App]()
	targetType   = reflect.TypeFor[Target]()
)

// decoder stores a yaml.Node tree into the config structs, field by field,
// so that every problem can be reported with its line and key path.
// yaml.v3's own Decode can do neither per-element defaults nor friendly
// messages, and has no hook for durations with days.
type decoder struct {
	file   string
	lookup func(string) (string, bool)

	errs    []*Error
	lines   map[string]int // key path -> line where it was set
	fields  map[reflect.Type]map[string]int
	merging map[*yaml.Node]bool
	steps   int
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	return &decoder{
		file:    file,
		lookup:  lookup,
		lines:   make(map[string]int),
		fields:  make(map[reflect.Type]map[string]int),
		merging: make(map[*yaml.Node]bool),
	}
}

func (d *decoder) errorf(line int, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// step counts work and reports whether the budget still allows more.
func (d *decoder) step(n *yaml.Node) bool {
	d.steps++
	if d.steps == maxDecodeSteps+1 {
		d.errorf(n.Line, "", "document too complex (too many aliases or merges)")
	}
	return d.steps <= maxDecodeSteps
}

// decode stores n into v, which already holds its default. A null value
// keeps the default.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n == nil || !d.step(n) {
		return
	}
	if isNull(n) {
		if v.Type() == prefixType {
			d.errorf(n.Line, path, "expected an IP address or CIDR prefix, got null")
		}
		return
	}
	switch v.Type() {
	case durationType:
		s, ok := d.text(n, path, "a duration")
		if !ok {
			return
		}
		dur, err := parseDuration(s)
		if err != nil {
			d.errorf(n.Line, path, "invalid duration %q (want e.g. 30s, 15m, 1h30m or 7d)", s)
			return
		}
		v.SetInt(int64(dur))
		return
	case prefixType:
		s, ok := d.text(n, path, "an IP address or CIDR prefix")
		if !ok {
			return
		}
		p, err := parsePrefix(s)
		if err != nil {
			d.errorf(n.Line, path, "invalid CIDR prefix %q", s)
			return
		}
		v.Set(reflect.ValueOf(p))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if s, ok := d.text(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		s, ok := d.text(n, path, "true or false")
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.errorf(n.Line, path, "expected true or false, got %q", s)
		}
	case reflect.Int, reflect.Int64:
		s, ok := d.text(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			d.errorf(n.Line, path, "expected an integer, got %q", s)
			return
		}
		v.SetInt(i)
	default:
		panic("config: no decoder for " + v.Type().String())
	}
}

// text returns the expanded value of a scalar.
func (d *decoder) text(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "expected %s, got %s", want, describe(n))
		return "", false
	}
	s, err := expand(n.Value, d.lookup)
	if err != nil {
		d.errorf(n.Line, path, "%v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := d.fieldsOf(v.Type())
	for _, e := range d.entries(n, path) {
		i, ok := fields[e.key]
		if !ok {
			d.unknownKey(e, path, fields)
			continue
		}
		p := join(path, e.key)
		if _, seen := d.lines[p]; !seen {
			d.lines[p] = e.line
		}
		d.decode(e.value, v.Field(i), p)
	}
}

func (d *decoder) unknownKey(e entry, path string, fields map[string]int) {
	msg := fmt.Sprintf("unknown key %q", e.key)
	if path != "" {
		msg += " in " + path
	}
	if s := suggest(e.key, fields); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: e.line, Msg: msg})
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = c.Line
		e := s.Index(i)
		switch v.Type().Elem() {
		case appType:
			e.Set(reflect.ValueOf(DefaultApp()))
		case targetType:
			e.Set(reflect.ValueOf(DefaultTarget()))
		}
		d.decode(c, e, p)
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	entries := d.entries(n, path)
	m := reflect.MakeMapWithSize(v.Type(), len(entries))
	for _, e := range entries {
		p := path + "." + e.key
		d.lines[p] = e.line
		val := reflect.New(v.Type().Elem()).Elem()
		d.decode(e.value, val, p)
		m.SetMapIndex(reflect.ValueOf(e.key), val)
	}
	v.Set(m)
}

// entry is one key of a mapping, after merge keys (<<) have been applied.
type entry struct {
	key   string
	line  int
	value *yaml.Node
}

// entries lists the keys of a mapping node. Keys given in the mapping itself
// win over merged ones; among merged mappings the first wins, as in YAML's
// merge key type.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	if d.merging[n] {
		d.errorf(n.Line, path, "merge (<<) refers to itself")
		return nil
	}
	d.merging[n] = true
	defer delete(d.merging, n)

	var own, merged []entry
	seen := make(map[string]int) // key -> line of the mapping's own keys
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || !d.step(k) {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.merge(val, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "keys must be strings, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			where := "at top level"
			if path != "" {
				where = "in " + path
			}
			d.errorf(k.Line, "", "duplicate key %q %s (first at line %d)", k.Value, where, first)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, entry{key: k.Value, line: k.Line, value: val})
	}
	for _, e := range merged {
		if _, ok := seen[e.key]; !ok {
			seen[e.key] = e.line
			own = append(own, e)
		}
	}
	return own
}

// merge returns the entries the value of a merge key brings in: one mapping
// or a list of mappings.
func (d *decoder) merge(val *yaml.Node, path string) []entry {
	val = resolve(val)
	if val == nil {
		return nil
	}
	var sources []*yaml.Node
	switch val.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{val}
	case yaml.SequenceNode:
		for _, c := range val.Content {
			sources = append(sources, resolve(c))
		}
	default:
		sources = []*yaml.Node{val}
	}
	var out []entry
	for _, src := range sources {
		if src == nil || src.Kind != yaml.MappingNode {
			d.errorf(val.Line, path, "merge (<<) needs a mapping or a list of mappings")
			return nil
		}
		out = append(out, d.entries(src, path)...)
	}
	return out
}

// fieldsOf maps the yaml names of t's fields to their index.
func (d *decoder) fieldsOf(t reflect.Type) map[string]int {
	if f, ok := d.fields[t]; ok {
		return f
	}
	f := make(map[string]int)
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			f[name] = i
		}
	}
	d.fields[t] = f
	return f
}

// line returns the line where path, or the closest enclosing key, was set.
func (d *decoder) line(path string) int {
	for path != "" {
		if l, ok := d.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return "a string"
	}
	return "something else"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns the known key closest to an unknown one, if any is close.
func suggest(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, name := range names {
		if d := editDistance(strings.ToLower(key), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
