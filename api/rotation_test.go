package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
)

// After JOBALERT_SECRET is rotated (the old one set as
// JOBALERT_SECRET_PREVIOUS), the links already emailed keep working
// through the API, new links carry the new secret's key id, and links of
// a secret the server does not hold are refused.
func TestLinksSurviveSecretRotation(t *testing.T) {
	const oldSecret, newSecret = "the-secret-before-rotation", "the-secret-after-rotation!"
	old, _ := token.NewSigner(oldSecret)
	rotated, err := token.NewSigner(newSecret, oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(_ *api.Config, d *api.Deps) { d.Tokens = rotated })
	leave := e.active("leave@example.com", store.StatusActive)
	stay := e.active("stay@example.com", store.StatusActive)

	oldManage := old.IssueVersion(token.Manage, stay.ID, stay.TokenVersion, time.Now().Add(time.Hour))
	if r := e.do("GET", "/v1/manage?token="+url.QueryEscape(oldManage), "", "Accept", "text/html"); r.status != http.StatusOK {
		t.Errorf("manage link signed with the previous secret: got %d, want 200", r.status)
	}
	oldUnsub := old.Issue(token.Unsubscribe, leave.ID, time.Time{})
	r := e.do("POST", "/v1/unsubscribe?token="+url.QueryEscape(oldUnsub), "List-Unsubscribe=One-Click",
		"Content-Type", "application/x-www-form-urlencoded")
	if r.status != http.StatusOK || e.status(leave.ID) != store.StatusUnsubscribed {
		t.Errorf("one-click unsubscribe signed with the previous secret: got %d, status %s; want 200, unsubscribed", r.status, e.status(leave.ID))
	}

	link := e.srv.Links().Manage(stay.ID, stay.TokenVersion)
	u, _ := url.Parse(link)
	if kid, _, _ := strings.Cut(u.Query().Get("token"), "."); kid != token.KeyID(newSecret) {
		t.Errorf("a new link's key id: got %q, want the current secret's %q", kid, token.KeyID(newSecret))
	}
	if r := e.do("GET", link, "", "Accept", "text/html"); r.status != http.StatusOK {
		t.Errorf("a new link: got %d, want 200", r.status)
	}

	stranger, _ := token.NewSigner("a-secret-this-server-never-had")
	bad := stranger.IssueVersion(token.Manage, stay.ID, stay.TokenVersion, time.Now().Add(time.Hour))
	if r := e.do("GET", "/v1/manage?token="+url.QueryEscape(bad), ""); r.status != http.StatusBadRequest || r.code(t) != "invalid_token" {
		t.Errorf("a link of an unknown secret: got %d %s, want 400 invalid_token", r.status, r.body)
	}

	// Once the previous secret is removed, its links stop working.
	after := newEnv(t, func(_ *api.Config, d *api.Deps) { d.Tokens, _ = token.NewSigner(newSecret) })
	sub := after.active("later@example.com", store.StatusActive)
	oldLater := old.IssueVersion(token.Manage, sub.ID, sub.TokenVersion, time.Now().Add(time.Hour))
	if r := after.do("GET", "/v1/manage?token="+url.QueryEscape(oldLater), ""); r.status != http.StatusBadRequest {
		t.Errorf("a link of the removed previous secret: got %d, want 400", r.status)
	}
}
