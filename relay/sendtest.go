package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/asnrelay/asnrelay/apple/appletest"
)

// SendTestTimeout bounds the POST of send-test.
const SendTestTimeout = 15 * time.Second

// SendTestOptions describe the notification send-test mints and where it goes.
type SendTestOptions struct {
	URL         string
	Type        string // default TEST
	Subtype     string
	BundleID    string
	Environment string // default Sandbox
	AppAppleID  int64
	// RootOut, when set, is where the test CA's root certificate is written
	// (for apple.root_certs); the CA itself is kept in RootOut+".signer.pem"
	// and reused by later runs, so the relay keeps trusting what they sign.
	RootOut string
	Client  *http.Client
	Now     func() time.Time
}

// SendTestResult is what the relay answered.
type SendTestResult struct {
	Status int
	UUID   string
	// Answer is the start of the response body.
	Answer string
	// RootWritten is true when a new root certificate was written.
	RootWritten bool
}

// SendTest mints a notification signed by a local test CA and POSTs it.
func SendTest(ctx context.Context, o SendTestOptions) (SendTestResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: SendTestTimeout}
	}
	if o.Type == "" {
		o.Type = "TEST"
	}
	var res SendTestResult
	ca, written, err := testCA(o.RootOut, o.Now())
	if err != nil {
		return res, err
	}
	res.RootWritten = written
	res.UUID = newUUID()
	body, err := ca.Body(appletest.Notification{
		Type: o.Type, Subtype: o.Subtype, UUID: res.UUID, SignedDate: o.Now(),
		BundleID: o.BundleID, Environment: o.Environment, AppAppleID: o.AppAppleID,
	})
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, SendTestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, bytes.NewReader(body))
	if err != nil {
		return res, fmt.Errorf("send-test: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.Client.Do(req)
	if err != nil {
		return res, fmt.Errorf("send-test: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	res.Status, res.Answer = resp.StatusCode, string(bytes.TrimSpace(answer))
	return res, nil
}

// testCA loads the CA kept beside rootOut, or mints one (valid for ten
// years: it only signs local tests) and keeps it there.
func testCA(rootOut string, now time.Time) (*appletest.CA, bool, error) {
	if rootOut == "" {
		ca, err := appletest.New(now.Add(-time.Hour), now.Add(24*time.Hour))
		return ca, false, err
	}
	signer := rootOut + ".signer.pem"
	data, err := os.ReadFile(signer)
	if err == nil {
		ca, err := appletest.ParsePEM(data)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", signer, err)
		}
		return ca, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	ca, err := appletest.New(now.Add(-time.Hour), now.AddDate(10, 0, 0))
	if err != nil {
		return nil, false, err
	}
	keep, err := ca.MarshalPEM()
	if err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(signer, keep, 0o600); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(rootOut, ca.RootPEM(), 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// newUUID returns a random (version 4) UUID, the form of Apple's notificationUUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
