package main

import (
	"github.com/spf13/cobra"

	"github.com/wharfmq/wharf/internal/buildinfo"
	"github.com/wharfmq/wharf/internal/config"
	"github.com/wharfmq/wharf/internal/server"
)

func newServeCmd(info buildinfo.Info, lookupEnv func(string) (string, bool)) *cobra.Command {
	var flags *config.Flags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the broker",
		Long: `Run the broker until SIGINT or SIGTERM, then shut down cleanly.
A second signal forces an immediate exit with status 1. SIGHUP reads the
TLS certificate, key and CA files again; connections opened afterwards use
them.

Each setting comes from, highest precedence first: its flag, its WHARF_*
environment variable, the YAML file given by --config (or WHARF_CONFIG),
and its default. An empty listener address disables that listener.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := flags.Load(lookupEnv)
			if err != nil {
				return err
			}
			logger, err := server.NewLogger(cmd.ErrOrStderr(), cfg.LogLevel, cfg.LogFormat)
			if err != nil {
				return err
			}
			logger.Info("starting wharf", "version", info.Version, "commit", info.Commit, "go", info.GoVersion)
			ctx, stop := notifyShutdown(cmd.Context(), logger)
			defer stop()
			reload, stopReload := notifyReload()
			defer stopReload()
			return server.RunWithOptions(ctx, cfg, logger, server.Options{Reload: reload})
		},
	}
	flags = config.AddFlags(cmd.Flags())
	return cmd
}
