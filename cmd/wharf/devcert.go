package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfmq/wharf/internal/certs"
)

func newDevCertCmd() *cobra.Command {
	var (
		dir    string
		hosts  []string
		client string
		days   int
	)
	cmd := &cobra.Command{
		Use:   "dev-cert",
		Short: "Write a self-signed CA, a server certificate and a client certificate for local TLS",
		Long: `Write, for development only, a self-signed certificate authority
(ca.crt, ca.key), a server certificate signed by it for --hosts
(server.crt, server.key) and a client certificate whose common name is
--client (client.crt, client.key), then print the settings that use them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days < 1 {
				return fmt.Errorf("--days must be at least 1, not %d", days)
			}
			now := time.Now()
			f, err := certs.WriteDev(certs.DevOptions{
				Dir: dir, Hosts: hosts, ClientName: client,
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Duration(days) * 24 * time.Hour),
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s, %s, %s, %s, %s and %s\n", f.CACert, f.CAKey, f.ServerCert, f.ServerKey, f.ClientCert, f.ClientKey)
			fmt.Fprintf(out, "serve with TLS beside the plain listeners:\n")
			fmt.Fprintf(out, "  wharf serve --kafka-tls-listen 127.0.0.1:9093 --amqps-listen 127.0.0.1:5671 --https-listen 127.0.0.1:8443 \\\n")
			fmt.Fprintf(out, "    --tls-cert-file %s --tls-key-file %s --tls-ca-file %s\n", f.ServerCert, f.ServerKey, f.CACert)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "wharf-certs", "directory to write the files to")
	cmd.Flags().StringSliceVar(&hosts, "hosts", []string{"localhost", "127.0.0.1", "::1"}, "DNS names and IP addresses the server certificate is valid for")
	cmd.Flags().StringVar(&client, "client", "guest", "common name of the client certificate")
	cmd.Flags().IntVar(&days, "days", 365, "days the certificates are valid")
	return cmd
}
