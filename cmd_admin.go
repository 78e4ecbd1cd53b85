package main

import "github.com/spf13/cobra"

// adminCommands are the commands that talk to a running daemon's admin API.
func adminCommands() []*cobra.Command { return nil }
