package broker

// AMQPChange is one change of the AMQP model, made of primitive steps that
// apply in order. The broker decides every step before the command is made,
// including the consequences RabbitMQ derives (an auto-delete exchange that
// lost its last binding is an explicit DeleteExchange step), so Apply
// decides nothing. Only the steps about durable objects are logged; see
// "Durability" in amqp_model.go.
type AMQPChange struct {
	Steps []AMQPStep `json:"steps"`
}

// AMQPStep is one primitive change of the AMQP model. Exactly one field is
// set.
type AMQPStep struct {
	CreateVhost *VhostDef `json:"create_vhost,omitempty"`
	// DeleteVhost removes the vhost with everything in it.
	DeleteVhost     *VhostDef    `json:"delete_vhost,omitempty"`
	DeclareExchange *ExchangeDef `json:"declare_exchange,omitempty"`
	// DeleteExchange removes the exchange and every binding it is the
	// source or the destination of.
	DeleteExchange *ExchangeName `json:"delete_exchange,omitempty"`
	DeclareQueue   *QueueDef     `json:"declare_queue,omitempty"`
	// DeleteQueue removes the queue and every binding to it.
	DeleteQueue *QueueName  `json:"delete_queue,omitempty"`
	Bind        *BindingDef `json:"bind,omitempty"`
	Unbind      *BindingDef `json:"unbind,omitempty"`
}

// VhostDef names a vhost.
type VhostDef struct {
	Name string `json:"name"`
}

// ExchangeDef is an exchange as the metadata records it.
type ExchangeDef struct {
	Vhost      string       `json:"vhost"`
	Name       string       `json:"name"`
	Type       ExchangeType `json:"type"`
	Durable    bool         `json:"durable,omitempty"`
	AutoDelete bool         `json:"auto_delete,omitempty"`
	Internal   bool         `json:"internal,omitempty"`
	Arguments  Table        `json:"arguments,omitempty"`
}

// ExchangeName names an exchange.
type ExchangeName struct {
	Vhost string `json:"vhost"`
	Name  string `json:"name"`
}

// QueueDef is a queue as the metadata records it.
type QueueDef struct {
	Vhost   string  `json:"vhost"`
	Name    string  `json:"name"`
	ID      QueueID `json:"id"`
	Durable bool    `json:"durable,omitempty"`
	// Owner is the connection an exclusive queue belongs to; empty for a
	// queue that is not exclusive. Exclusive queues are never durable, so
	// an owner is never logged.
	Owner      string `json:"owner,omitempty"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Arguments  Table  `json:"arguments,omitempty"`
}

// QueueName names one incarnation of a queue.
type QueueName struct {
	Vhost string  `json:"vhost"`
	Name  string  `json:"name"`
	ID    QueueID `json:"id"`
}

// BindingDef is a binding. Its identity is the whole of it, as in
// RabbitMQ: two bindings between the same source and destination differ if
// their routing keys or arguments do.
type BindingDef struct {
	Vhost       string `json:"vhost"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// ToExchange tells an exchange-to-exchange binding from a queue binding.
	ToExchange bool   `json:"to_exchange,omitempty"`
	RoutingKey string `json:"routing_key"`
	Arguments  Table  `json:"arguments,omitempty"`
}

func (s AMQPStep) kind() string {
	switch {
	case s.CreateVhost != nil:
		return "create_vhost"
	case s.DeleteVhost != nil:
		return "delete_vhost"
	case s.DeclareExchange != nil:
		return "declare_exchange"
	case s.DeleteExchange != nil:
		return "delete_exchange"
	case s.DeclareQueue != nil:
		return "declare_queue"
	case s.DeleteQueue != nil:
		return "delete_queue"
	case s.Bind != nil:
		return "bind"
	case s.Unbind != nil:
		return "unbind"
	}
	return "empty"
}
