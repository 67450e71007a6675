package feed_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/chattest"
	"github.com/jobalert/jobalert/channel/feed"
	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/testenv"
)

type env struct {
	store *feed.Store
	srv   *httptest.Server
	sub   string
	token string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	s := feed.NewStore(rdb, feed.Keys{Prefix: prefix}, 0, clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)).Now)
	h, err := feed.NewHandler(s, feed.HandlerConfig{
		PublicURL: "https://jobs.example.com",
		ManageURL: func(sub string) string { return "https://jobs.example.com/v1/manage?sub=" + sub },
		Logger:    testenv.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(feed.Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{store: s, srv: srv, sub: "sub-" + testenv.RandomHex(4)}
	if e.token, err = s.Token(context.Background(), e.sub); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) get(t *testing.T, token string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+feed.Path+token+".atom", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// appendDigest appends the jobs of chattest.Digest(n), renamed with tag,
// in batches of batch, newest last batch, a second apart.
func appendJobs(t *testing.T, e *env, jobs []channel.Job, at time.Time) {
	t.Helper()
	if err := e.store.Append(context.Background(), e.sub, jobs, at); err != nil {
		t.Fatal(err)
	}
}

func TestFeedKeepsTheNewest100(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	jobs := chattest.Digest(150).Jobs // job-0000 … job-0149
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	// Batches of 10, each newest first, the later batches newer.
	for b := 0; b < 15; b++ {
		batch := make([]channel.Job, 0, 10)
		for i := b*10 + 9; i >= b*10; i-- {
			batch = append(batch, jobs[i])
		}
		appendJobs(t, e, batch, t0.Add(time.Duration(b)*time.Minute))
	}
	// A job matched again (a redelivery, an update) keeps its place and
	// shows the new data.
	again := jobs[120]
	again.Title = "Renamed title"
	appendJobs(t, e, []channel.Job{again}, t0.Add(time.Hour))

	snap, err := e.store.Read(ctx, e.sub)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Items) != feed.DefaultCap {
		t.Fatalf("feed holds %d items, want %d", len(snap.Items), feed.DefaultCap)
	}
	for i, it := range snap.Items {
		if want := fmt.Sprintf("job-%04d", 149-i); it.Job.ID != want {
			t.Fatalf("item %d is %s, want %s (newest first)", i, it.Job.ID, want)
		}
	}
	if got := snap.Items[29]; got.Job.ID != "job-0120" || got.Job.Title != "Renamed title" {
		t.Errorf("item 29 = %s %q, want job-0120 renamed in place", got.Job.ID, got.Job.Title)
	}
	if !snap.Updated.Equal(t0.Add(time.Hour)) {
		t.Errorf("updated %s, want %s", snap.Updated, t0.Add(time.Hour))
	}
}

func TestFeedHTTP(t *testing.T) {
	e := newEnv(t)
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	appendJobs(t, e, chattest.Digest(120).Jobs, t0)

	resp, body := e.get(t, e.token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/atom+xml; charset=utf-8",
		"Last-Modified": "Sun, 06 Dec 2026 09:00:00 GMT",
		"Cache-Control": "private, max-age=60",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Errorf("ETag %q", etag)
	}

	f, err := gofeed.NewParser().ParseString(body)
	if err != nil {
		t.Fatalf("gofeed: %v", err)
	}
	if f.FeedType != "atom" || f.FeedVersion != "1.0" {
		t.Errorf("feed type %s %s, want atom 1.0", f.FeedType, f.FeedVersion)
	}
	if len(f.Items) != 100 {
		t.Fatalf("%d items, want 100", len(f.Items))
	}
	first := f.Items[0]
	if !strings.HasPrefix(first.Title, "Senior Backend Engineer 0 — Payments & <Ledger>") || !strings.HasSuffix(first.Title, "@everyone") {
		t.Errorf("first title %q", first.Title)
	}
	if first.Link != "https://careers.example.com/jobs/0?src=alert&utm=<x>|y" && first.Link != "https://careers.example.com/jobs/0?src=alert&utm=%3Cx%3E%7Cy" {
		t.Errorf("first link %q", first.Link)
	}
	if first.UpdatedParsed == nil || !first.UpdatedParsed.Equal(t0) || first.PublishedParsed == nil {
		t.Errorf("first updated %v published %v", first.UpdatedParsed, first.PublishedParsed)
	}
	if !strings.HasPrefix(first.GUID, "tag:jobs.example.com,2026:job:") {
		t.Errorf("entry id %q, want a tag: URI", first.GUID)
	}
	if !strings.Contains(f.Items[2].Description, channel.SponsorshipNotStated) {
		t.Errorf("third summary %q lacks %q", f.Items[2].Description, channel.SponsorshipNotStated)
	}
	if len(first.Categories) == 0 || first.Categories[0] != "Visa: H-1B" {
		t.Errorf("first categories %v", first.Categories)
	}

	// Conditional GETs.
	if r, b := e.get(t, e.token, map[string]string{"If-None-Match": etag}); r.StatusCode != 304 || b != "" {
		t.Errorf("If-None-Match: %d, %d bytes, want 304 without a body", r.StatusCode, len(b))
	}
	if r, _ := e.get(t, e.token, map[string]string{"If-Modified-Since": "Sun, 06 Dec 2026 09:00:00 GMT"}); r.StatusCode != 304 {
		t.Errorf("If-Modified-Since: %d, want 304", r.StatusCode)
	}
	if r, _ := e.get(t, e.token, map[string]string{"If-Modified-Since": "Sun, 06 Dec 2026 08:59:59 GMT"}); r.StatusCode != 200 {
		t.Errorf("If-Modified-Since before: %d, want 200", r.StatusCode)
	}
	if r, _ := e.get(t, e.token, map[string]string{"If-None-Match": `"other"`, "If-Modified-Since": "Sun, 06 Dec 2026 09:00:00 GMT"}); r.StatusCode != 200 {
		t.Errorf("If-None-Match that differs wins over If-Modified-Since: %d, want 200", r.StatusCode)
	}
	// A new match changes the feed.
	appendJobs(t, e, []channel.Job{{ID: "new-1", Title: "Staff Engineer", Company: "Initech"}}, t0.Add(5*time.Second))
	r, b := e.get(t, e.token, map[string]string{"If-None-Match": etag})
	if r.StatusCode != 200 || r.Header.Get("ETag") == etag || !strings.Contains(b, "Staff Engineer at Initech") {
		t.Errorf("after a new match: %d, ETag %q (was %q)", r.StatusCode, r.Header.Get("ETag"), etag)
	}
}

// TestFeedTokens: unknown, revoked and malformed tokens get the same 404.
func TestFeedTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	appendJobs(t, e, chattest.Digest(2).Jobs, time.Now())
	old := e.token
	if again, _ := e.store.Token(ctx, e.sub); again != old {
		t.Errorf("Token made a new token (%q) when one existed", again)
	}
	fresh, err := e.store.Rotate(ctx, e.sub)
	if err != nil {
		t.Fatal(err)
	}
	_, notFound := e.get(t, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil)
	for name, tok := range map[string]string{
		"revoked": old, "never issued": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "malformed": "a%20b", "short": "abc",
	} {
		r, b := e.get(t, tok, nil)
		if r.StatusCode != 404 || b != notFound {
			t.Errorf("%s token: %d %q, want the same 404 as any unknown token", name, r.StatusCode, b)
		}
	}
	if r, _ := e.get(t, fresh, nil); r.StatusCode != 200 {
		t.Errorf("new token: %d, want 200", r.StatusCode)
	}
	if err := e.store.Delete(ctx, e.sub); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.get(t, fresh, nil); r.StatusCode != 404 {
		t.Errorf("after Delete: %d, want 404", r.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+feed.Path+fresh+".atom", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST: %v %v, want 405", resp.StatusCode, err)
	}
}

// TestFeedPassesTheAtomSchema checks the feed against RFC 4287's RELAX NG
// schema (testdata/atom.rnc, Appendix B) with trang and xmllint, which
// CI installs with `apt-get install -y libxml2-utils trang`.
func TestFeedPassesTheAtomSchema(t *testing.T) {
	xmllint, err1 := exec.LookPath("xmllint")
	trang, err2 := exec.LookPath("trang")
	if err1 != nil || err2 != nil {
		t.Skip("Atom schema check skipped: xmllint or trang missing (apt-get install -y libxml2-utils trang)")
	}
	e := newEnv(t)
	appendJobs(t, e, chattest.Digest(120).Jobs, time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	appendJobs(t, e, []channel.Job{{ID: "bare job \x01 id", Title: "No URL \x07 nor details", Company: "X"}}, time.Date(2026, 12, 6, 9, 1, 0, 0, time.UTC))
	_, body := e.get(t, e.token, nil)
	dir := t.TempDir()
	rng := filepath.Join(dir, "atom.rng")
	if out, err := exec.Command(trang, "testdata/atom.rnc", rng).CombinedOutput(); err != nil {
		t.Fatalf("trang: %v\n%s", err, out)
	}
	doc := filepath.Join(dir, "feed.atom")
	if err := os.WriteFile(doc, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmllint, "--noout", "--relaxng", rng, doc).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint --relaxng: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "validates") {
		t.Errorf("xmllint said %q", out)
	}
	// The schema check is not a rubber stamp: a feed without its id fails.
	bad := strings.Replace(body, "<id>tag:jobs.example.com,2026:feed:", "<idx>", 1)
	_ = os.WriteFile(doc, []byte(bad), 0o644)
	if out, err := exec.Command(xmllint, "--noout", "--relaxng", rng, doc).CombinedOutput(); err == nil {
		t.Errorf("a broken feed validated: %s", out)
	}
}

// TestKeysShareOneSlot: Append and Read touch one subscription's keys
// only, all under its hash tag (Redis Cluster); a token's lookup key
// holds a hash, not the token.
func TestKeysShareOneSlot(t *testing.T) {
	k := feed.Keys{Prefix: "jobalert:"}
	want := testenv.HashTag(k.Items("sub-1"))
	for _, key := range []string{k.Entries("sub-1"), k.Meta("sub-1"), k.Token("sub-1")} {
		if testenv.HashTag(key) != want || want == "" {
			t.Errorf("%s is not under the hash tag %q", key, want)
		}
	}
	if l := k.Lookup("tok-secret"); testenv.HashTag(l) == "" || strings.Contains(l, "secret") {
		t.Errorf("lookup key %q", l)
	}
}

// AppendAll writes what Append writes, feed by feed, across more feeds
// than one pipeline carries, and after Redis lost its scripts (a restart,
// SCRIPT FLUSH) too.
func TestAppendAllIsAppendPerFeed(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	one := feed.NewStore(rdb, feed.Keys{Prefix: prefix + "one:"}, 5, nil)
	all := feed.NewStore(rdb, feed.Keys{Prefix: prefix + "all:"}, 5, nil)
	jobs := chattest.Digest(8).Jobs
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for round, flush := range []bool{false, true} {
		per := map[string][]channel.Job{}
		for i := range 600 {
			sub := fmt.Sprintf("sub-%03d", i)
			per[sub] = jobs[i%4 : i%4+1+round*3]
			if err := one.Append(ctx, sub, per[sub], at); err != nil {
				t.Fatal(err)
			}
		}
		per["no-jobs"] = nil
		if flush {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := all.AppendAll(ctx, per, at); err != nil {
			t.Fatalf("round %d: AppendAll: %v", round, err)
		}
		for _, sub := range []string{"sub-000", "sub-001", "sub-511", "sub-512", "sub-599"} {
			want, err := one.Read(ctx, sub)
			if err != nil {
				t.Fatal(err)
			}
			got, err := all.Read(ctx, sub)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.Items) != fmt.Sprint(want.Items) || len(got.Items) == 0 {
				t.Errorf("round %d, %s: got %v, want %v (as Append wrote it)", round, sub, got.Items, want.Items)
			}
		}
	}
	if err := all.AppendAll(ctx, map[string][]channel.Job{"bad": {{Title: "no id"}}}, at); err == nil {
		t.Errorf("a job without an id: got nil, want an error")
	}
}
