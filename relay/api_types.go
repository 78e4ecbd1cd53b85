package relay

import (
	"encoding/json"
	"time"

	"github.com/asnrelay/asnrelay/store"
)

// The documents of the admin API. The server writes them and AdminClient
// reads them; field names are part of the external interface.

// NotificationSummary is one notification in a list. Fields read from an
// unverified payload (notification_uuid, type, environment) are what it
// claims, untrusted.
type NotificationSummary struct {
	ID          uint64    `json:"id"`
	UUID        string    `json:"notification_uuid"`
	App         string    `json:"app"`
	Environment string    `json:"environment"`
	Type        string    `json:"type"`
	Subtype     string    `json:"subtype"`
	State       string    `json:"state"`
	ReceivedAt  time.Time `json:"received_at"`
	Reason      string    `json:"reason,omitempty"`
}

// NotificationList is the answer of GET /api/v1/notifications: newest first;
// NextCursor is empty on the last page.
type NotificationList struct {
	Notifications []NotificationSummary `json:"notifications"`
	NextCursor    string                `json:"next_cursor"`
}

// NotificationInfo is a notification's metadata in full.
type NotificationInfo struct {
	NotificationSummary
	BundleID    string    `json:"bundle_id,omitempty"`
	Size        int       `json:"size"`
	RemoteAddr  string    `json:"remote_addr,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	ProcessedAt time.Time `json:"processed_at,omitzero"`
}

// NotificationDetail is the answer of GET /api/v1/notifications/{id}.
// Payload is the decoded document ({"notification", "transaction",
// "renewalInfo", "appTransaction"}); Verified says whether to trust it.
type NotificationDetail struct {
	Notification NotificationInfo `json:"notification"`
	Verified     bool             `json:"verified"`
	Payload      json.RawMessage  `json:"payload"`
	PayloadError string           `json:"payload_error,omitempty"`
	Deliveries   []DeliveryInfo   `json:"deliveries"`
}

// DeliveryInfo is one delivery of a notification to a target.
type DeliveryInfo struct {
	ID            uint64    `json:"id"`
	Notification  uint64    `json:"notification"`
	UUID          string    `json:"notification_uuid"`
	Target        string    `json:"target"`
	App           string    `json:"app"`
	Environment   string    `json:"environment"`
	Type          string    `json:"type"`
	Payload       string    `json:"payload"`
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	CreatedAt     time.Time `json:"created_at"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	FinishedAt    time.Time `json:"finished_at,omitzero"`
	LastStatus    int       `json:"last_status,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	ReplayOf      uint64    `json:"replay_of,omitempty"`
	ReplayedBy    uint64    `json:"replayed_by,omitempty"`
}

// DeliveryList is the answer of GET /api/v1/deliveries, newest first.
type DeliveryList struct {
	Deliveries []DeliveryInfo `json:"deliveries"`
	NextCursor string         `json:"next_cursor"`
}

// AttemptInfo is one recorded HTTP attempt.
type AttemptInfo struct {
	N         int       `json:"n"`
	At        time.Time `json:"at"`
	Status    int       `json:"status,omitempty"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
	Response  string    `json:"response,omitempty"`
}

// DeliveryDetail is the answer of GET /api/v1/deliveries/{id}.
type DeliveryDetail struct {
	Delivery DeliveryInfo  `json:"delivery"`
	Attempts []AttemptInfo `json:"attempts"`
}

// ReplayRequest is the body of POST /api/v1/replay. With IDs, those
// notifications are sent again to every target they qualify for (or only
// Target). With State "dead", every dead delivery not yet replayed that
// matches the filters is sent again. Otherwise every processed notification
// matching the filters (Since is required) is. Since and Until take a
// duration ago ("72h", "7d") or an RFC 3339 time.
type ReplayRequest struct {
	IDs         []uint64 `json:"ids,omitempty"`
	Target      string   `json:"target,omitempty"`
	State       string   `json:"state,omitempty"`
	App         string   `json:"app,omitempty"`
	Type        string   `json:"type,omitempty"`
	Environment string   `json:"environment,omitempty"`
	Since       string   `json:"since,omitempty"`
	Until       string   `json:"until,omitempty"`
}

// ReplayResult is the answer of POST /api/v1/replay and of
// POST /api/v1/deliveries/{id}/retry.
type ReplayResult struct {
	Created    int      `json:"created"`
	Deliveries []uint64 `json:"deliveries"`
	// Skipped lists the requested notifications, or dead deliveries, that
	// were not replayed (to a target), and why.
	Skipped []ReplaySkip `json:"skipped,omitempty"`
	// Truncated is set when a bulk replay stopped at MaxReplay deliveries.
	Truncated bool `json:"truncated,omitempty"`
}

// ReplaySkip says why something was not replayed.
type ReplaySkip struct {
	Notification uint64 `json:"notification"`
	Delivery     uint64 `json:"delivery,omitempty"`
	Target       string `json:"target,omitempty"`
	Reason       string `json:"reason"`
}

// ReverifyRequest is the body of POST /api/v1/reverify: the unverified
// notifications among IDs, or all received since Since (all of them when
// both are empty), are verified again.
type ReverifyRequest struct {
	IDs   []uint64 `json:"ids,omitempty"`
	Since string   `json:"since,omitempty"`
}

// ReverifyResult says how many notifications went back to processing.
type ReverifyResult struct {
	Queued int `json:"queued"`
}

// Stats is the answer of GET /api/v1/stats.
type Stats struct {
	Version       string            `json:"version"`
	Now           time.Time         `json:"now"`
	Notifications NotificationStats `json:"notifications"`
	Targets       []TargetStats     `json:"targets"`
	Ingest        IngestStats       `json:"ingest"`
	// Refunds are the refund ledger's figures over the same period.
	Refunds RefundStatsDoc `json:"refunds"`
}

// NotificationStats counts notifications: Stored and Inbox over the whole
// file; ByState and ByApp (app -> type -> count) over those received since
// Since, newest first, Scanned of them (Complete is false when the scan
// stopped at its bound first).
type NotificationStats struct {
	Stored   int                       `json:"stored"`
	Inbox    int                       `json:"inbox"`
	LastID   uint64                    `json:"last_id"`
	Since    time.Time                 `json:"since"`
	Scanned  int                       `json:"scanned"`
	Complete bool                      `json:"complete"`
	ByState  map[string]int            `json:"by_state"`
	ByApp    map[string]map[string]int `json:"by_app"`
}

// TargetStats is one target's backlog and health.
type TargetStats struct {
	Name                 string    `json:"name"`
	Pending              int       `json:"pending"`
	Dead                 int       `json:"dead"`
	OldestPendingSeconds float64   `json:"oldest_pending_seconds"`
	LastError            string    `json:"last_error,omitempty"`
	LastErrorDelivery    uint64    `json:"last_error_delivery,omitempty"`
	Failing              bool      `json:"failing"`
	NextProbe            time.Time `json:"next_probe,omitzero"`
	InFlight             int       `json:"in_flight"`
}

// IngestStats counts requests to /asn/... since the daemon started, by app
// and HTTP status.
type IngestStats struct {
	Requests int                       `json:"requests"`
	ByApp    map[string]map[string]int `json:"by_app"`
}

// AppList is the answer of GET /api/v1/apps.
type AppList struct {
	Apps []AppInfo `json:"apps"`
}

// AppInfo is one configured app.
type AppInfo struct {
	Name         string   `json:"name"`
	BundleID     string   `json:"bundle_id"`
	AppAppleID   int64    `json:"app_apple_id,omitempty"`
	Environments []string `json:"environments"`
	// API says whether an App Store Server API key is configured.
	API bool `json:"api"`
	// Status is, per API environment, the key's status from the check at
	// start-up: "Active", "not checked yet", "no api block: ..." or what is
	// wrong. CheckedAt is when that check ended.
	Status    map[string]string `json:"status,omitempty"`
	CheckedAt time.Time         `json:"checked_at,omitzero"`
}

func notificationSummary(n store.Notification) NotificationSummary {
	return NotificationSummary{
		ID: n.Seq, UUID: n.UUID, App: n.App, Environment: n.Environment, Type: n.Type,
		Subtype: n.Subtype, State: string(n.State), ReceivedAt: n.ReceivedAt, Reason: n.Reason,
	}
}

func deliveryInfo(d store.Delivery) DeliveryInfo {
	return DeliveryInfo{
		ID: d.ID, Notification: d.Seq, UUID: d.UUID, Target: d.Target, App: d.App,
		Environment: d.Environment, Type: d.Type, Payload: d.Payload, State: string(d.State),
		Attempts: d.Attempts, CreatedAt: d.CreatedAt, NextAttemptAt: d.NextAttemptAt,
		FinishedAt: d.FinishedAt, LastStatus: d.LastStatus, LastError: d.LastError,
		ReplayOf: d.ReplayOf, ReplayedBy: d.ReplayedBy,
	}
}

func deliveryInfos(ds []store.Delivery) []DeliveryInfo {
	out := make([]DeliveryInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, deliveryInfo(d))
	}
	return out
}
