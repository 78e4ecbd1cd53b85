// Command naive is the storage baseline that go run ./bench measures asnrelay
// against: a net/http server that puts each request body into one bbolt
// bucket through a single writer goroutine, which commits everything queued
// while the previous commit ran in one transaction and one fsync, and answers
// 200 once its body is committed. It does nothing else: no metadata, no
// verification, no forwarding.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"io"
	"log"
	"net/http"

	bolt "go.etcd.io/bbolt"
)

type put struct {
	body []byte
	done chan error
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	path := flag.String("db", "naive.db", "bbolt file")
	flag.Parse()
	db, err := bolt.Open(*path, 0o600, nil)
	if err != nil {
		log.Fatal(err)
	}
	bucket := []byte("bodies")
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		log.Fatal(err)
	}
	queue := make(chan put, 1024)
	go func() {
		batch := make([]put, 0, 1024)
		for p := range queue {
			batch = append(batch[:0], p)
		more:
			for len(batch) < cap(batch) {
				select {
				case p := <-queue:
					batch = append(batch, p)
				default:
					break more
				}
			}
			err := db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucket)
				for _, p := range batch {
					seq, _ := b.NextSequence()
					if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), p.body); err != nil {
						return err
					}
				}
				return nil
			})
			for _, p := range batch {
				p.done <- err
			}
		}
	}()
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p := put{body: buf.Bytes(), done: make(chan error, 1)}
		queue <- p
		if err := <-p.done; err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
