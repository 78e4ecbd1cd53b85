package config

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest configuration Parse reads.
const MaxFileSize = 4 << 20

// ErrInvalid is matched by every error that Parse, Load and Validate return,
// so a caller can tell a configuration problem (exit code 2) from any other
// failure with errors.Is(err, config.ErrInvalid).
var ErrInvalid = errors.New("invalid config")

// Error is one problem with a configuration. Its message reads
// "file:line: key: message", leaving out what is not known.
type Error struct {
	File string // the file name given to Parse or Load; "" if unknown
	Line int    // 1-based; 0 if unknown
	Key  string // key path such as "targets[0].retry.initial"; "" if the message names it
	Msg  string
	Err  error // the underlying error, such as an *fs.PathError, or nil

	// lineOf is the key path whose line Parse reports, if not Key.
	lineOf string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Options say where a configuration comes from and how Parse reaches the
// environment and the file system.
type Options struct {
	// Name is the file name used in error messages ("asnrelay.yaml:12: ...").
	Name string
	// Dir is the directory relative paths are resolved against; "" leaves
	// them relative to the working directory.
	Dir string
	// LookupEnv looks up ${NAME}; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile reads the *_file keys; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

// Load reads the configuration file at path with the process environment,
// resolving relative paths against the file's directory.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Msg: err.Error(), Err: err}
	}
	defer f.Close()
	return Parse(f, Options{
		Name:      path,
		Dir:       filepath.Dir(path),
		LookupEnv: os.LookupEnv,
		ReadFile:  os.ReadFile,
	})
}

// Parse reads one YAML document from r, starting from Default, and returns
// it validated. See the package documentation for the rules.
func Parse(r io.Reader, opts Options) (*Config, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: opts.Name, Msg: "read: " + err.Error(), Err: err}
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: opts.Name, Msg: fmt.Sprintf("larger than %d MiB", MaxFileSize>>20)}
	}
	root, err := parseYAML(data, opts.Name)
	if err != nil {
		return nil, err
	}

	cfg := Default()
	d := newDecoder(opts.Name, opts.LookupEnv)
	if root != nil {
		d.decode(root, reflect.ValueOf(&cfg).Elem(), "")
	}
	if len(d.errs) > 0 {
		return nil, joinErrors(d.errs)
	}
	for i := range cfg.Apps {
		if len(cfg.Apps[i].Environments) == 0 {
			cfg.Apps[i].Environments = DefaultEnvironments()
		}
	}
	cfg.resolvePaths(opts.Dir)
	d.readSecrets(&cfg, opts.ReadFile)
	if len(d.errs) > 0 {
		return nil, joinErrors(d.errs)
	}
	problems := cfg.problems()
	for _, p := range problems {
		at := p.Key
		if p.lineOf != "" {
			at = p.lineOf
		}
		p.File, p.Line = opts.Name, d.line(at)
	}
	if len(problems) > 0 {
		return nil, joinErrors(problems)
	}
	return &cfg, nil
}

// parseYAML returns the root node of the only document in data, or nil for
// an empty document.
func parseYAML(data []byte, name string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, syntaxError(name, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		if err != nil {
			return nil, syntaxError(name, err)
		}
		return nil, &Error{File: name, Line: next.Line, Msg: "only one YAML document is allowed"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// syntaxError turns yaml.v3's "yaml: line 3: message" into an *Error.
func syntaxError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, m, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, m
			}
		}
	}
	return &Error{File: name, Line: line, Msg: msg, Err: err}
}

func joinErrors(errs []*Error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// resolvePaths makes relative file paths relative to dir.
func (c *Config) resolvePaths(dir string) {
	c.DataDir = resolvePath(dir, c.DataDir)
	for i, p := range c.Apple.RootCerts {
		c.Apple.RootCerts[i] = resolvePath(dir, p)
	}
	c.Admin.TokenFile = resolvePath(dir, c.Admin.TokenFile)
	for i := range c.Targets {
		c.Targets[i].SecretFile = resolvePath(dir, c.Targets[i].SecretFile)
	}
	for i := range c.Apps {
		if api := c.Apps[i].API; api != nil {
			api.PrivateKeyFile = resolvePath(dir, api.PrivateKeyFile)
		}
	}
}

func resolvePath(dir, p string) string {
	if dir == "" || p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// readSecrets reads the *_file keys.
func (d *decoder) readSecrets(c *Config, readFile func(string) ([]byte, error)) {
	read := func(key, path string) ([]byte, bool) {
		data, err := readFile(path)
		if err != nil {
			d.errs = append(d.errs, &Error{File: d.file, Line: d.line(key), Key: key, Msg: err.Error(), Err: err})
			return nil, false
		}
		if len(bytes.TrimSpace(data)) == 0 {
			d.errorf(d.line(key), key, "%s is empty", path)
			return nil, false
		}
		return data, true
	}
	secret := func(prefix, value string, dst *string, file string) {
		if file == "" {
			return
		}
		if value != "" {
			d.errorf(d.line(prefix+"_file"), prefix+"_file", "cannot be combined with %s", prefix)
			return
		}
		if data, ok := read(prefix+"_file", file); ok {
			*dst = string(bytes.TrimSpace(data))
		}
	}
	secret("admin.token", c.Admin.Token, &c.Admin.Token, c.Admin.TokenFile)
	for i := range c.Targets {
		t := &c.Targets[i]
		secret(fmt.Sprintf("targets[%d].secret", i), t.Secret, &t.Secret, t.SecretFile)
	}
	for i := range c.Apps {
		api := c.Apps[i].API
		if api == nil || api.PrivateKeyFile == "" {
			continue
		}
		key := fmt.Sprintf("apps[%d].api.private_key_file", i)
		data, ok := read(key, api.PrivateKeyFile)
		if !ok {
			continue
		}
		if block, _ := pem.Decode(data); block == nil {
			d.errorf(d.line(key), key, "%s is not a PEM file (want the .p8 key downloaded from App Store Connect)", api.PrivateKeyFile)
			continue
		}
		api.PrivateKey = data
	}
}

// App returns the app called name.
func (c *Config) App(name string) (*App, bool) {
	for i := range c.Apps {
		if c.Apps[i].Name == name {
			return &c.Apps[i], true
		}
	}
	return nil, false
}

// Allows reports whether the app accepts notifications from env
// (Production, Sandbox, Xcode or LocalTesting). An app that lists no
// environments accepts DefaultEnvironments.
func (a *App) Allows(env string) bool {
	return slices.Contains(a.EnvironmentList(), env)
}

// EnvironmentList returns the environments the app accepts: its own list, or
// DefaultEnvironments when it lists none.
func (a *App) EnvironmentList() []string {
	if len(a.Environments) == 0 {
		return DefaultEnvironments()
	}
	return a.Environments
}

// IsLoopback reports whether listen, a host:port address, only accepts
// connections from this machine: its host is localhost or an address in
// 127.0.0.0/8 or ::1. An empty host means every interface, not loopback.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Unmap().IsLoopback()
}
