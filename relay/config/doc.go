// Package config parses and validates asnrelay.yaml.
//
// Parse and Load read one YAML document and return a validated *Config:
//
//   - Parsing starts from Default; every element of apps and targets starts
//     from DefaultApp and DefaultTarget, so a key that is left out (or set to
//     null) keeps its default and an explicit false or 0 is kept as written.
//     An app with no environments gets DefaultEnvironments.
//   - Unknown keys, duplicate keys, values of the wrong type and bad
//     durations or CIDR prefixes are errors that name the file, the line and
//     the key: "asnrelay.yaml:12: unknown key "foo" in targets[0]".
//   - ${NAME} in a value is replaced by the environment variable NAME; an
//     undefined variable is an error. $$ stands for a single $, and a $ not
//     followed by { or $ is kept as is. Expansion applies to values only (not
//     to keys or comments) and its result is never parsed as YAML, so a
//     variable may hold any characters.
//   - Durations are Go durations ("90s", "1h30m") or use a d suffix for
//     days ("7d", "1d12h", "0.5d").
//   - trusted_proxies and allow_sources take CIDR prefixes; a bare address
//     means a single host (/32 or /128).
//   - admin.token_file, targets[].secret_file and apps[].api.private_key_file
//     are read with Options.ReadFile into Admin.Token, Target.Secret and
//     API.PrivateKey. Setting both token and token_file (or secret and
//     secret_file) is an error.
//   - Relative paths (data_dir, apple.root_certs and the *_file keys) are
//     resolved against Options.Dir, the directory of the config file for
//     Load, and stored resolved.
//
// Every error returned by Parse, Load and Validate matches ErrInvalid with
// errors.Is, and is either an *Error or several of them joined with
// errors.Join. Error messages never contain secret values.
package config
