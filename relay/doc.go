// Package relay puts asnrelay together: it reads the configuration, serves the
// public ingest endpoint and the admin API, and runs the processing and
// delivery stages over one store.
package relay
