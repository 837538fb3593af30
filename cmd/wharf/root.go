package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wharfmq/wharf/internal/buildinfo"
	"github.com/wharfmq/wharf/internal/cli"
)

// newRootCmd builds the command tree. lookupEnv reads the environment
// (os.LookupEnv outside tests).
func newRootCmd(info buildinfo.Info, lookupEnv func(string) (string, bool)) *cobra.Command {
	root := &cobra.Command{
		Use:   "wharf",
		Short: "Wharf is a message broker speaking Kafka, AMQP 0-9-1 and WebSocket from one store",
		// main prints the error once; usage is printed only for mistakes on
		// the command line (see the flag error func below).
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	root.AddCommand(newServeCmd(info, lookupEnv), newVersionCmd(info), newBenchCmd(), newDevCertCmd())
	root.AddCommand(cli.Commands(lookupEnv)...)
	return root
}
