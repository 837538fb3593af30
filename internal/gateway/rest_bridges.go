package gateway

import (
	"net/http"

	"github.com/wharfmq/wharf/internal/broker"
)

// restBridge is a bridge rule with what it has done since the process
// started.
type restBridge struct {
	Name       string `json:"name"`
	Topic      string `json:"topic"`
	Vhost      string `json:"vhost"`
	Exchange   string `json:"exchange"`
	RoutingKey string `json:"routing_key,omitempty"`
	Start      string `json:"start"`
	Bridged    int64  `json:"bridged"`
	Unroutable int64  `json:"unroutable"`
	Looped     int64  `json:"looped"`
	Rejected   int64  `json:"rejected"`
	Lag        int64  `json:"lag"`
}

// listBridges lists the configured bridge rules (they are set in the
// configuration file, not here).
func (a *restAPI) listBridges(w http.ResponseWriter, r *http.Request) error {
	out := []restBridge{}
	if a.bridges != nil {
		stats := a.bridges.Stats()
		for i, rule := range a.bridges.Rules() {
			out = append(out, restBridgeOf(rule, stats[i]))
		}
	}
	return a.reply(w, http.StatusOK, struct {
		Bridges []restBridge `json:"bridges"`
	}{out})
}

func restBridgeOf(r broker.BridgeRule, st broker.BridgeStats) restBridge {
	start := "latest"
	if r.FromEarliest {
		start = "earliest"
	}
	return restBridge{
		Name: r.Name, Topic: r.Topic, Vhost: r.Vhost, Exchange: r.Exchange, RoutingKey: r.RoutingKey, Start: start,
		Bridged: st.Bridged, Unroutable: st.Unroutable, Looped: st.Looped, Rejected: st.Rejected, Lag: st.Lag,
	}
}
