package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium for a browser test, with the small
// steps every such test uses. It is closed when the test ends.
type browser struct {
	t   *testing.T
	ctx context.Context // bounded to a minute from the start
}

// startBrowser starts the Chromium at path, in time zone tz (the form
// reads the person's zone from the browser), quiet on the network.
func startBrowser(t *testing.T, path, tz string) *browser {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.Env("TZ="+tz),
	)
	t.Cleanup(cancelAlloc)
	b, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(b); err != nil { // starts the browser; no timeout on this one
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(b, 60*time.Second)
	t.Cleanup(cancel)
	return &browser{t: t, ctx: ctx}
}

// do runs actions, failing the test with step's name.
func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

// text returns the text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// value returns the value of the first input matching sel.
func (b *browser) value(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return v
}
