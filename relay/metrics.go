package relay

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/asnrelay/asnrelay/store"
)

// metrics holds every asnrelay_ metric of one relay, in its own registry.
type metrics struct {
	registry        *prometheus.Registry
	ingestRequests  *prometheus.CounterVec
	ingestDuration  prometheus.Histogram
	ingestInFlight  prometheus.GaugeFunc
	commitDuration  prometheus.Histogram
	batchSize       prometheus.Histogram
	notifications   *prometheus.CounterVec
	deliveries      *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec
	appleRequests   *prometheus.CounterVec
	appleAPIUp      *prometheus.GaugeVec

	consumptionAnswers *prometheus.CounterVec
	refunds            *prometheus.CounterVec
}

// newMetrics builds the metrics; now is the relay's clock, for the backlog's ages.
func newMetrics(db func() *store.DB, targets []string, now func() time.Time, inFlight func() int64) *metrics {
	const ns = "asnrelay"
	m := &metrics{
		registry: prometheus.NewRegistry(),
		ingestRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "ingest_requests_total",
			Help: "Requests to /asn/..., by app (\"unknown\" for unconfigured names) and HTTP status."}, []string{"app", "code"}),
		ingestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "ingest_duration_seconds",
			Help: "Time from request to the 200, fsync included.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		ingestInFlight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "ingest_in_flight_requests",
			Help: "Requests to /asn/... being read or committed right now."}, func() float64 { return float64(inFlight()) }),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "store_commit_duration_seconds",
			Help: "Duration of one group commit (write and fsync).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "store_batch_size",
			Help: "Writes committed together by one fsync.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "notifications_total",
			Help: "Processed notifications by app, environment, type and resulting state."}, []string{"app", "environment", "type", "state"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "deliveries_total",
			Help: "Delivery attempts by target and result (success, retry, dead)."}, []string{"target", "result"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "delivery_attempt_duration_seconds",
			Help: "Duration of one HTTP attempt to a target.", Buckets: prometheus.DefBuckets}, []string{"target"}),
		appleRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "apple_requests_total",
			Help: "HTTP attempts to the App Store Server API, by endpoint and HTTP status (\"error\" when there was no answer)."}, []string{"endpoint", "code"}),
		appleAPIUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "apple_api_up",
			Help: "1 when the app's In-App Purchase key worked against the App Store Server API at the last check, else 0."}, []string{"app", "environment"}),
		consumptionAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "consumption_answers_total",
			Help: "Tries at answering CONSUMPTION_REQUEST, by app, refundPreference (none when left out) and result (sent, retry, failed, skipped, dry_run, cancelled)."}, []string{"app", "preference", "result"}),
		refunds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "refunds_total",
			Help: "Verified refund ledger notifications, by app and notificationType (CONSUMPTION_REQUEST, REFUND, REFUND_DECLINED, REFUND_REVERSED, REVOKE)."}, []string{"app", "type"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.ingestRequests, m.ingestDuration, m.ingestInFlight, m.commitDuration, m.batchSize, m.notifications, m.deliveries, m.attemptDuration,
		m.appleRequests, m.appleAPIUp,
		&backlogCollector{db: db, targets: targets, now: now},
		m.consumptionAnswers, m.refunds, &consumptionCollector{db: db, now: now},
	)
	return m
}

func (m *metrics) observeCommit(writes int, took time.Duration) {
	m.commitDuration.Observe(took.Seconds())
	m.batchSize.Observe(float64(writes))
}

// backlogCollector reads the per-target backlog from the store at scrape time,
// so the figures are right after a restart too.
type backlogCollector struct {
	db      func() *store.DB
	targets []string
	now     func() time.Time
}

var (
	descPending = prometheus.NewDesc("asnrelay_deliveries_pending", "Deliveries waiting to be sent, by target.", []string{"target"}, nil)
	descDead    = prometheus.NewDesc("asnrelay_deliveries_dead", "Dead deliveries not yet replayed, by target.", []string{"target"}, nil)
	descOldest  = prometheus.NewDesc("asnrelay_oldest_pending_seconds", "Age of the oldest pending delivery, by target; 0 when none.", []string{"target"}, nil)
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descDead
	ch <- descOldest
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	db := c.db()
	if db == nil {
		return
	}
	for _, t := range c.targets {
		count, oldest, err := db.PendingStats(t)
		if err != nil {
			continue
		}
		dead, err := db.DeadCount(t)
		if err != nil {
			continue
		}
		age := 0.0
		if !oldest.IsZero() {
			age = max(c.now().Sub(oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(count), t)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(dead), t)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age, t)
	}
}
