package relay

import (
	"errors"
	"net/http"

	"github.com/asnrelay/asnrelay/store"
)

// apiDeliveries serves GET /api/v1/deliveries.
func (r *Relay) apiDeliveries(w http.ResponseWriter, req *http.Request) error {
	q, err := parseDeliveryQuery(req.URL.Query(), r.now())
	if err != nil {
		return err
	}
	ds, next, err := r.db.Deliveries(q.filter, q.before, q.limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DeliveryList{Deliveries: deliveryInfos(ds), NextCursor: encodeCursor(cursorDeliveries, next)})
	return nil
}

func (r *Relay) delivery(req *http.Request) (store.Delivery, error) {
	id, err := pathID(req, "delivery")
	if err != nil {
		return store.Delivery{}, err
	}
	d, err := r.db.Delivery(id)
	if errors.Is(err, store.ErrNotFound) {
		return d, errNotFound("delivery %d not found", id)
	}
	return d, err
}

// apiDelivery serves GET /api/v1/deliveries/{id}, with its attempts.
func (r *Relay) apiDelivery(w http.ResponseWriter, req *http.Request) error {
	d, err := r.delivery(req)
	if err != nil {
		return err
	}
	atts, err := r.db.Attempts(d.ID)
	if err != nil {
		return err
	}
	detail := DeliveryDetail{Delivery: deliveryInfo(d), Attempts: make([]AttemptInfo, 0, len(atts))}
	for _, a := range atts {
		detail.Attempts = append(detail.Attempts, AttemptInfo{
			N: a.N, At: a.At, Status: a.Status, LatencyMS: float64(a.Latency.Microseconds()) / 1000,
			Error: a.Error, Response: a.Response,
		})
	}
	writeJSON(w, http.StatusOK, detail)
	return nil
}

// apiRetry serves POST /api/v1/deliveries/{id}/retry: a new pending delivery
// of the same notification to the same target, linked to this one.
func (r *Relay) apiRetry(w http.ResponseWriter, req *http.Request) error {
	d, err := r.delivery(req)
	if err != nil {
		return err
	}
	res, err := r.retryDelivery(d)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// apiReplay serves POST /api/v1/replay.
func (r *Relay) apiReplay(w http.ResponseWriter, req *http.Request) error {
	var in ReplayRequest
	if err := readJSON(w, req, &in); err != nil {
		return err
	}
	res, err := r.replay(in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
