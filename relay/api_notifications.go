package relay

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/asnrelay/asnrelay/apple"
	"github.com/asnrelay/asnrelay/store"
)

// requeueBatch bounds the notifications one reverify transaction requeues.
const requeueBatch = 500

// apiNotifications serves GET /api/v1/notifications.
func (r *Relay) apiNotifications(w http.ResponseWriter, req *http.Request) error {
	q, err := parseNotificationQuery(req.URL.Query(), r.now())
	if err != nil {
		return err
	}
	ns, next, err := r.db.Notifications(q.filter, q.before, q.limit)
	if err != nil {
		return err
	}
	list := NotificationList{Notifications: make([]NotificationSummary, 0, len(ns)), NextCursor: encodeCursor(cursorNotifications, next)}
	for _, n := range ns {
		list.Notifications = append(list.Notifications, notificationSummary(n))
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// pathID reads the {id} of the request's path.
func pathID(req *http.Request, what string) (uint64, error) {
	id, err := parseID(req.PathValue("id"))
	if err != nil {
		return 0, errBadRequest("%s id: %v", what, err)
	}
	return id, nil
}

func (r *Relay) notification(req *http.Request) (store.Notification, error) {
	id, err := pathID(req, "notification")
	if err != nil {
		return store.Notification{}, err
	}
	n, err := r.db.Notification(id)
	if errors.Is(err, store.ErrNotFound) {
		return n, errNotFound("notification %d not found", id)
	}
	return n, err
}

// apiNotification serves GET /api/v1/notifications/{id}.
func (r *Relay) apiNotification(w http.ResponseWriter, req *http.Request) error {
	n, err := r.notification(req)
	if err != nil {
		return err
	}
	ds, err := r.db.NotificationDeliveries(n.Seq)
	if err != nil {
		return err
	}
	detail := NotificationDetail{
		Notification: NotificationInfo{
			NotificationSummary: notificationSummary(n), BundleID: n.BundleID, Size: n.Size,
			RemoteAddr: n.RemoteAddr, ContentType: n.ContentType, ProcessedAt: n.ProcessedAt,
		},
		Verified:   n.State == store.StateVerified,
		Deliveries: deliveryInfos(ds),
	}
	detail.Payload, err = r.decodedDocument(n.Seq)
	if err != nil {
		detail.PayloadError = err.Error()
	}
	writeJSON(w, http.StatusOK, detail)
	return nil
}

// decodedDocument returns the decoded document of notification seq: the one
// stored for `payload: decoded` targets, else one decoded now from the body
// without verification (the caller says whether it was verified).
func (r *Relay) decodedDocument(seq uint64) (json.RawMessage, error) {
	doc, err := r.db.Decoded(seq)
	if err == nil {
		return doc, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	body, err := r.db.Body(seq)
	if err != nil {
		return nil, err
	}
	return decodeBody(body)
}

// decodeBody decodes a stored request body without verifying it.
func decodeBody(body []byte) (json.RawMessage, error) {
	var b struct {
		SignedPayload string `json:"signedPayload"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.SignedPayload == "" {
		return nil, errors.New("body is not a JSON object with a string signedPayload")
	}
	n, err := apple.DecodeNotification(b.SignedPayload)
	if n == nil {
		return nil, err
	}
	// Nested data that does not decode is left out; the rest is still shown.
	return n.DecodedJSON()
}

// apiNotificationBody serves GET /api/v1/notifications/{id}/body: the bytes
// exactly as received.
func (r *Relay) apiNotificationBody(w http.ResponseWriter, req *http.Request) error {
	id, err := pathID(req, "notification")
	if err != nil {
		return err
	}
	body, err := r.db.Body(id)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("notification %d not found", id)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
	return nil
}

// apiReverify serves POST /api/v1/reverify: unverified notifications go back
// to the inbox and the processor verifies them again with the current
// configuration, creating the deliveries they now qualify for.
func (r *Relay) apiReverify(w http.ResponseWriter, req *http.Request) error {
	var in ReverifyRequest
	if err := readJSON(w, req, &in); err != nil {
		return err
	}
	if len(in.IDs) > MaxPageSize {
		return errBadRequest("ids: at most %d per request", MaxPageSize)
	}
	queued := 0
	if len(in.IDs) > 0 {
		if in.Since != "" {
			return errBadRequest("give ids or since, not both")
		}
		for _, id := range in.IDs {
			if id == 0 {
				return errBadRequest("ids: 0 is not a notification id")
			}
		}
		done, err := r.db.Requeue(in.IDs)
		if err != nil {
			return err
		}
		queued = len(done)
	} else {
		f := store.NotificationFilter{State: store.StateUnverified}
		if in.Since != "" {
			since, err := parseSince(in.Since, r.now())
			if err != nil {
				return errBadRequest("since: %v", err)
			}
			f.Since = since
		}
		var before uint64
		for {
			ns, next, err := r.db.Notifications(f, before, requeueBatch)
			if err != nil {
				return err
			}
			if len(ns) > 0 {
				seqs := make([]uint64, len(ns))
				for i, n := range ns {
					seqs[i] = n.Seq
				}
				done, err := r.db.Requeue(seqs)
				if err != nil {
					return err
				}
				queued += len(done)
			}
			if next == 0 {
				break
			}
			before = next
		}
	}
	if queued > 0 {
		r.log.Info().Int("notifications", queued).Msg("unverified notifications queued for verification again")
		r.processor.wake()
	}
	writeJSON(w, http.StatusOK, ReverifyResult{Queued: queued})
	return nil
}
