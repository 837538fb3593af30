package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharfmq/wharf/internal/alarm"
)

// AlarmCollector reports the resource alarms at each scrape: whether each
// is set, and the measurements and limits behind them.
type AlarmCollector struct {
	mon                                          *alarm.Monitor
	alarm, diskFree, diskLimit, memUsed, memHigh *prometheus.Desc
}

// NewAlarmCollector returns a collector over the broker's alarm monitor.
func NewAlarmCollector(mon *alarm.Monitor) *AlarmCollector {
	return &AlarmCollector{
		mon:       mon,
		alarm:     prometheus.NewDesc("wharf_alarm", "1 while the resource alarm is set (publishers blocked), 0 otherwise.", []string{"resource"}, nil),
		diskFree:  prometheus.NewDesc("wharf_disk_free_bytes", "Free bytes on the data directory's filesystem at the last check.", nil, nil),
		diskLimit: prometheus.NewDesc("wharf_disk_free_limit_bytes", "Free bytes below which the disk alarm is set; 0 when it is disabled.", nil, nil),
		memUsed:   prometheus.NewDesc("wharf_memory_in_use_bytes", "Memory the Go runtime holds in use for the process at the last check.", nil, nil),
		memHigh:   prometheus.NewDesc("wharf_memory_high_watermark_bytes", "Memory use at which the memory alarm is set; 0 when it is disabled.", nil, nil),
	}
}

// Describe sends the descriptions.
func (c *AlarmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.alarm, c.diskFree, c.diskLimit, c.memUsed, c.memHigh} {
		ch <- d
	}
}

// Collect reads the monitor.
func (c *AlarmCollector) Collect(ch chan<- prometheus.Metric) {
	set, st := c.mon.Alarms(), c.mon.Stats()
	for _, r := range alarm.Resources {
		v := 0.0
		if set.Has(r) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.alarm, prometheus.GaugeValue, v, r.String())
	}
	ch <- prometheus.MustNewConstMetric(c.diskFree, prometheus.GaugeValue, float64(st.DiskFree))
	ch <- prometheus.MustNewConstMetric(c.diskLimit, prometheus.GaugeValue, float64(st.DiskFreeLimit))
	ch <- prometheus.MustNewConstMetric(c.memUsed, prometheus.GaugeValue, float64(st.MemoryInUse))
	ch <- prometheus.MustNewConstMetric(c.memHigh, prometheus.GaugeValue, float64(st.MemoryHighWatermark))
}
