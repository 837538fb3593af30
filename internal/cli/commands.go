package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// env is how the commands read the environment (os.LookupEnv outside
// tests).
type env func(string) (string, bool)

// conn holds the flags every command shares.
type conn struct {
	server, user, password, output string
	out, errOut                    io.Writer
	in                             io.Reader
}

func (c *conn) client() (*Client, error) { return NewClient(c.server, c.user, c.password) }

func (c *conn) printer() printer { return printer{w: c.out, json: c.output == "json"} }

// Commands returns the administration and data commands, to add to the
// root command. lookupEnv supplies WHARF_SERVER, WHARF_USER and
// WHARF_PASSWORD defaults.
func Commands(lookupEnv func(string) (string, bool)) []*cobra.Command {
	c := &conn{out: os.Stdout, errOut: os.Stderr, in: os.Stdin}
	get := func(name, def string) string {
		if v, ok := lookupEnv(name); ok && v != "" {
			return v
		}
		return def
	}
	cmds := []*cobra.Command{
		topicCmd(c), queueCmd(c), exchangeCmd(c), bindingCmd(c), groupCmd(c), userCmd(c), permissionCmd(c),
		produceCmd(c), consumeCmd(c),
	}
	for _, cmd := range cmds {
		f := cmd.PersistentFlags()
		f.StringVar(&c.server, "server", get("WHARF_SERVER", "http://127.0.0.1:8080"), "the broker's HTTP listener (env WHARF_SERVER)")
		f.StringVar(&c.user, "user", get("WHARF_USER", "guest"), "user name (env WHARF_USER)")
		f.StringVar(&c.password, "password", get("WHARF_PASSWORD", "guest"), "password (env WHARF_PASSWORD)")
		f.StringVarP(&c.output, "output", "o", "table", "output: table or json")
		cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
			c.out, c.errOut, c.in = cmd.OutOrStdout(), cmd.ErrOrStderr(), cmd.InOrStdin()
			if c.output != "table" && c.output != "json" {
				return fmt.Errorf("--output %q: give table or json", c.output)
			}
			return nil
		}
	}
	return cmds
}

// call runs one REST request and returns the decoded answer.
func (c *conn) call(ctx context.Context, method, p string, q url.Values, body any) (map[string]any, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, cl.Do(ctx, method, p, q, body, &out)
}

// listCmd is a list subcommand: GET p, print field's array.
func (c *conn) listCmd(use, short string, p func() string, field string, cols ...column) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := c.call(cmd.Context(), http.MethodGet, p(), nil, nil)
			if err != nil {
				return err
			}
			return c.printer().table(objects(res[field]), cols...)
		},
	}
}

// showCmd runs one request with the first argument and prints the answer.
func (c *conn) showCmd(use, short, method string, p func(arg string) string, body func() any) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b any
			if body != nil {
				b = body()
			}
			res, err := c.call(cmd.Context(), method, p(args[0]), nil, b)
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
}

// keyValues parses k=v flags.
func keyValues(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: give key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// arguments parses k=v flags into AMQP arguments: integers become numbers,
// true and false booleans, the rest strings.
func arguments(kvs []string) (map[string]any, error) {
	m, err := keyValues(kvs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		} else if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
			out[k] = b
		} else {
			out[k] = v
		}
	}
	return out, nil
}

func topicCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "topic", Short: "Create, list, describe, alter and delete topics"}
	var partitions int32
	var configs []string
	create := &cobra.Command{
		Use: "create TOPIC", Short: "Create a topic", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := keyValues(configs)
			if err != nil {
				return err
			}
			body := map[string]any{"name": args[0], "configs": cfg}
			if partitions > 0 {
				body["partitions"] = partitions
			}
			res, err := c.call(cmd.Context(), http.MethodPost, path("topics"), nil, body)
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
	create.Flags().Int32VarP(&partitions, "partitions", "p", 0, "number of partitions (default: the broker's)")
	create.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable), e.g. retention.ms=3600000")

	var set, del []string
	alter := &cobra.Command{
		Use: "alter TOPIC", Short: "Set or delete topic configs", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := keyValues(set)
			if err != nil {
				return err
			}
			res, err := c.call(cmd.Context(), http.MethodPatch, path("topics", args[0], "configs"), nil, map[string]any{"set": s, "delete": del})
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
	alter.Flags().StringArrayVar(&set, "set", nil, "config to set, key=value (repeatable)")
	alter.Flags().StringArrayVar(&del, "delete", nil, "config to return to its default (repeatable)")

	cmd.AddCommand(create, alter,
		c.listCmd("list", "List topics", func() string { return path("topics") }, "topics",
			column{"NAME", "name"}, column{"PARTITIONS", "partitions"}, column{"ID", "id"}),
		c.showCmd("describe TOPIC", "Show a topic's partitions, offsets and configs", http.MethodGet,
			func(t string) string { return path("topics", t) }, nil),
		c.showCmd("delete TOPIC", "Delete a topic and its data", http.MethodDelete,
			func(t string) string { return path("topics", t) }, nil),
	)
	return cmd
}

func queueCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "queue", Short: "Declare, list, purge and delete AMQP queues"}
	var vhost string
	var transient, autoDelete, exclusive bool
	var args []string
	declare := &cobra.Command{
		Use: "declare QUEUE", Short: "Declare a queue (durable unless --transient)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			as, err := arguments(args)
			if err != nil {
				return err
			}
			durable := !transient
			res, err := c.call(cmd.Context(), http.MethodPut, path("vhosts", vhost, "queues", a[0]), nil,
				map[string]any{"durable": durable, "auto_delete": autoDelete, "exclusive": exclusive, "arguments": as})
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
	declare.Flags().BoolVar(&transient, "transient", false, "not durable: gone at restart")
	declare.Flags().BoolVar(&autoDelete, "auto-delete", false, "delete when the last consumer goes")
	declare.Flags().BoolVar(&exclusive, "exclusive", false, "exclusive (rarely useful outside a connection)")
	declare.Flags().StringArrayVar(&args, "argument", nil, "queue argument key=value (repeatable), e.g. x-queue-type=quorum")
	list := c.listCmd("list", "List queues with ready, unacknowledged and consumer counts",
		func() string { return path("vhosts", vhost, "queues") }, "queues",
		column{"NAME", "name"}, column{"DURABLE", "durable"}, column{"MESSAGES", "messages"},
		column{"UNACKED", "messages_unacknowledged"}, column{"CONSUMERS", "consumers"})
	purge := c.showCmd("purge QUEUE", "Drop a queue's ready messages", http.MethodDelete,
		func(q string) string { return path("vhosts", vhost, "queues", q, "contents") }, nil)
	del := c.showCmd("delete QUEUE", "Delete a queue and its messages", http.MethodDelete,
		func(q string) string { return path("vhosts", vhost, "queues", q) }, nil)
	cmd.AddCommand(declare, list, purge, del)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "/", "virtual host")
	return cmd
}

func exchangeCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "exchange", Short: "Declare, list and delete AMQP exchanges"}
	var vhost, typ string
	var transient, autoDelete, internal bool
	var args []string
	declare := &cobra.Command{
		Use: "declare EXCHANGE", Short: "Declare an exchange (durable unless --transient)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			as, err := arguments(args)
			if err != nil {
				return err
			}
			res, err := c.call(cmd.Context(), http.MethodPut, path("vhosts", vhost, "exchanges", a[0]), nil,
				map[string]any{"type": typ, "durable": !transient, "auto_delete": autoDelete, "internal": internal, "arguments": as})
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
	declare.Flags().StringVarP(&typ, "type", "t", "direct", "direct, fanout, topic or headers")
	declare.Flags().BoolVar(&transient, "transient", false, "not durable: gone at restart")
	declare.Flags().BoolVar(&autoDelete, "auto-delete", false, "delete when its last binding goes")
	declare.Flags().BoolVar(&internal, "internal", false, "only other exchanges may publish to it")
	declare.Flags().StringArrayVar(&args, "argument", nil, "exchange argument key=value (repeatable), e.g. alternate-exchange=ae")
	list := c.listCmd("list", "List exchanges", func() string { return path("vhosts", vhost, "exchanges") }, "exchanges",
		column{"NAME", "name"}, column{"TYPE", "type"}, column{"DURABLE", "durable"}, column{"AUTO-DELETE", "auto_delete"},
		column{"INTERNAL", "internal"}, column{"ARGUMENTS", "arguments"})
	del := c.showCmd("delete EXCHANGE", "Delete an exchange", http.MethodDelete,
		func(x string) string { return path("vhosts", vhost, "exchanges", x) }, nil)
	cmd.AddCommand(declare, list, del)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "/", "virtual host")
	return cmd
}

func bindingCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "binding", Short: "Declare, list and delete bindings"}
	var vhost, key string
	var toExchange bool
	var args []string
	target := func(src, dst string) string {
		kind := "q"
		if toExchange {
			kind = "e"
		}
		return path("vhosts", vhost, "bindings", "e", src, kind, dst)
	}
	declare := &cobra.Command{
		Use: "declare SOURCE-EXCHANGE DESTINATION", Short: "Bind a queue (or, with --to-exchange, an exchange) to an exchange", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			as, err := arguments(args)
			if err != nil {
				return err
			}
			res, err := c.call(cmd.Context(), http.MethodPut, target(a[0], a[1]), nil, map[string]any{"routing_key": key, "arguments": as})
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
	declare.Flags().StringArrayVar(&args, "argument", nil, "binding argument key=value (repeatable), e.g. x-match=any")
	del := &cobra.Command{
		Use: "delete SOURCE-EXCHANGE DESTINATION", Short: "Remove the binding with --routing-key", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			res, err := c.call(cmd.Context(), http.MethodDelete, target(a[0], a[1]), url.Values{"routing_key": {key}}, nil)
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
	list := c.listCmd("list", "List bindings", func() string { return path("vhosts", vhost, "bindings") }, "bindings",
		column{"SOURCE", "source"}, column{"DESTINATION", "destination"}, column{"TYPE", "destination_type"},
		column{"ROUTING KEY", "routing_key"}, column{"ARGUMENTS", "arguments"})
	for _, sub := range []*cobra.Command{declare, del} {
		sub.Flags().StringVarP(&key, "routing-key", "k", "", "routing key (binding key)")
		sub.Flags().BoolVar(&toExchange, "to-exchange", false, "the destination is an exchange")
	}
	cmd.AddCommand(declare, list, del)
	cmd.PersistentFlags().StringVar(&vhost, "vhost", "/", "virtual host")
	return cmd
}

func groupCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "List and describe Kafka consumer groups"}
	describe := &cobra.Command{
		Use: "describe GROUP", Short: "Show a group's members and its lag per partition", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			res, err := c.call(cmd.Context(), http.MethodGet, path("groups", a[0]), nil, nil)
			if err != nil {
				return err
			}
			p := c.printer()
			if p.json {
				return p.value(res)
			}
			fmt.Fprintf(c.out, "group %s: %v, protocol %v %v, %d members\n", a[0], res["state"], res["protocol_type"], res["protocol"], len(objects(res["members"])))
			return p.table(objects(res["offsets"]), column{"TOPIC", "topic"}, column{"PARTITION", "partition"},
				column{"COMMITTED", "offset"}, column{"HIGH WATERMARK", "high_watermark"}, column{"LAG", "lag"})
		},
	}
	cmd.AddCommand(c.listCmd("list", "List consumer groups", func() string { return path("groups") }, "groups",
		column{"GROUP", "group"}, column{"STATE", "state"}, column{"PROTOCOL TYPE", "protocol_type"}), describe)
	return cmd
}

func userCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Add, list and delete users"}
	var password string
	var loopback bool
	var tags []string
	add := &cobra.Command{
		Use: "add USER", Short: "Add a user or change its password", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if password == "" {
				return fmt.Errorf("--new-password is required")
			}
			body := map[string]any{"password": password, "loopback_only": loopback}
			if cmd.Flags().Changed("tags") {
				body["tags"] = tags
			}
			res, err := c.call(cmd.Context(), http.MethodPut, path("users", a[0]), nil, body)
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
	add.Flags().StringVar(&password, "new-password", "", "the user's password")
	add.Flags().BoolVar(&loopback, "loopback-only", false, "may only connect from loopback addresses")
	add.Flags().StringSliceVar(&tags, "tags", nil, "the user's tags, such as administrator (replaces them; absent keeps them)")
	cmd.AddCommand(add,
		c.listCmd("list", "List users", func() string { return path("users") }, "users",
			column{"NAME", "name"}, column{"LOOPBACK ONLY", "loopback_only"}, column{"TAGS", "tags"}),
		c.showCmd("delete USER", "Delete a user", http.MethodDelete, func(u string) string { return path("users", u) }, nil),
	)
	return cmd
}

func permissionCmd(c *conn) *cobra.Command {
	cmd := &cobra.Command{Use: "permission", Short: "Set, clear and list users' permissions per vhost"}
	var vhost, configure, write, read string
	set := &cobra.Command{
		Use:   "set USER",
		Short: "Set what a user may configure, write and read in a vhost (regular expressions; empty allows nothing)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			res, err := c.call(cmd.Context(), http.MethodPut, path("permissions", vhost, a[0]), nil,
				map[string]any{"configure": configure, "write": write, "read": read})
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
	set.Flags().StringVar(&vhost, "vhost", "/", "the vhost")
	set.Flags().StringVar(&configure, "configure", "", "names the user may create, delete and reconfigure")
	set.Flags().StringVar(&write, "write", "", "names the user may publish or produce to")
	set.Flags().StringVar(&read, "read", "", "names the user may consume or fetch from")
	var clearVhost string
	clear := &cobra.Command{
		Use: "clear USER", Short: "Remove a user's access to a vhost", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			res, err := c.call(cmd.Context(), http.MethodDelete, path("permissions", clearVhost, a[0]), nil, nil)
			if err != nil {
				return err
			}
			return c.printer().value(res)
		},
	}
	clear.Flags().StringVar(&clearVhost, "vhost", "/", "the vhost")
	cmd.AddCommand(set, clear,
		c.listCmd("list", "List every user's permissions", func() string { return path("permissions") }, "permissions",
			column{"USER", "user"}, column{"VHOST", "vhost"}, column{"CONFIGURE", "configure"}, column{"WRITE", "write"}, column{"READ", "read"}))
	return cmd
}
