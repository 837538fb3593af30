package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharfmq/wharf/internal/broker"
)

// BridgeCollector reports the bridge rules at each scrape: records
// bridged, dropped as unroutable, skipped as loops, refused by full
// queues, and each rule's lag.
type BridgeCollector struct {
	bs                                         *broker.Bridges
	bridged, unroutable, looped, rejected, lag *prometheus.Desc
}

// NewBridgeCollector returns a collector over running bridges.
func NewBridgeCollector(bs *broker.Bridges) *BridgeCollector {
	rule := []string{"rule"}
	return &BridgeCollector{
		bs:         bs,
		bridged:    prometheus.NewDesc("wharf_bridge_records_total", "Kafka records a bridge rule published into its exchange.", rule, nil),
		unroutable: prometheus.NewDesc("wharf_bridge_unroutable_total", "Bridged records that reached no queue and were dropped.", rule, nil),
		looped:     prometheus.NewDesc("wharf_bridge_looped_total", "Records skipped because they came from the rule's own exchange.", rule, nil),
		rejected:   prometheus.NewDesc("wharf_bridge_rejected_total", "Bridged records a full queue refused (x-overflow reject-publish).", rule, nil),
		lag:        prometheus.NewDesc("wharf_bridge_lag_records", "Records of the rule's topic not yet bridged.", rule, nil),
	}
}

// Describe sends the descriptions.
func (c *BridgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.bridged, c.unroutable, c.looped, c.rejected, c.lag} {
		ch <- d
	}
}

// Collect reads the bridges.
func (c *BridgeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.bs.Stats() {
		ch <- prometheus.MustNewConstMetric(c.bridged, prometheus.CounterValue, float64(st.Bridged), st.Rule)
		ch <- prometheus.MustNewConstMetric(c.unroutable, prometheus.CounterValue, float64(st.Unroutable), st.Rule)
		ch <- prometheus.MustNewConstMetric(c.looped, prometheus.CounterValue, float64(st.Looped), st.Rule)
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(st.Rejected), st.Rule)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(st.Lag), st.Rule)
	}
}
