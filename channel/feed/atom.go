package feed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"html"
	"net/url"
	"strings"
	"time"

	"github.com/jobalert/jobalert/channel"
)

// The Atom document (RFC 4287), as encoding/xml writes it: every text is
// escaped, and characters XML cannot carry become U+FFFD.
type atomFeed struct {
	XMLName   xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID        string      `xml:"id"`
	Title     atomText    `xml:"title"`
	Subtitle  *atomText   `xml:"subtitle,omitempty"`
	Updated   string      `xml:"updated"`
	Links     []atomLink  `xml:"link"`
	Author    atomPerson  `xml:"author"`
	Generator string      `xml:"generator"`
	Entries   []atomEntry `xml:"entry"`
}

type atomText struct {
	Type string `xml:"type,attr,omitempty"`
	Body string `xml:",chardata"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomPerson struct {
	Name string `xml:"name"`
	URI  string `xml:"uri,omitempty"`
}

type atomCategory struct {
	Term  string `xml:"term,attr"`
	Label string `xml:"label,attr,omitempty"`
}

type atomEntry struct {
	ID         string         `xml:"id"`
	Title      atomText       `xml:"title"`
	Links      []atomLink     `xml:"link"`
	Updated    string         `xml:"updated"`
	Published  string         `xml:"published,omitempty"`
	Categories []atomCategory `xml:"category"`
	Summary    atomText       `xml:"summary"`
	Content    atomText       `xml:"content"`
}

// Meta is what a rendered feed says about itself besides its items.
type Meta struct {
	// Site is the service's public URL: its host names the tag: ids.
	Site *url.URL
	// Self is the feed's own URL.
	Self string
	// ManageURL, when set, is linked as the feed's related page.
	ManageURL string
	// Sub is the subscription id; the feed's id is derived from it (not
	// from the token, so it survives a new token, and without showing it).
	Sub     string
	Product string
}

// tagID is a tag: URI (RFC 4151) under the service's host and a fixed
// date: stable across restarts and token changes.
func tagID(site *url.URL, specific string) string {
	return "tag:" + site.Hostname() + ",2026:" + specific
}

// Render writes snap as an Atom 1.0 document.
func Render(snap Snapshot, m Meta) ([]byte, error) {
	if m.Site == nil || m.Site.Hostname() == "" {
		return nil, fmt.Errorf("feed: render needs the site URL")
	}
	if m.Product == "" {
		m.Product = "jobalert"
	}
	subHash := sha256.Sum256([]byte(m.Sub))
	title := snap.Title
	if title == "" {
		title = "job alert"
	}
	updated := snap.Updated
	if updated.IsZero() {
		updated = time.Unix(0, 0)
	}
	f := atomFeed{
		ID:        tagID(m.Site, "feed:"+hex.EncodeToString(subHash[:12])),
		Title:     atomText{Type: "text", Body: m.Product + ": " + title},
		Subtitle:  &atomText{Type: "text", Body: "The newest jobs matched by your job alert, newest first."},
		Updated:   updated.UTC().Format(time.RFC3339),
		Links:     []atomLink{{Rel: "self", Type: "application/atom+xml", Href: m.Self}},
		Author:    atomPerson{Name: m.Product, URI: m.Site.String()},
		Generator: m.Product,
	}
	if m.ManageURL != "" {
		f.Links = append(f.Links, atomLink{Rel: "related", Type: "text/html", Href: m.ManageURL})
	}
	for _, it := range snap.Items {
		f.Entries = append(f.Entries, entry(m.Site, it))
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", " ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("feed: encode: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func entry(site *url.URL, it Item) atomEntry {
	j := it.Job
	title := j.Title
	if j.Company != "" {
		title += " at " + j.Company
	}
	e := atomEntry{
		// One id per job: the same job is the same entry wherever it
		// shows. PathEscape keeps it a valid URI whatever the job id holds.
		ID:      tagID(site, "job:"+url.PathEscape(j.ID)),
		Title:   atomText{Type: "text", Body: title},
		Updated: it.MatchedAt.UTC().Format(time.RFC3339),
		Summary: atomText{Type: "text", Body: summary(j)},
		Content: atomText{Type: "html", Body: contentHTML(j)},
	}
	if j.URL != "" {
		e.Links = append(e.Links, atomLink{Rel: "alternate", Type: "text/html", Href: j.URL})
	}
	if !j.PostedAt.IsZero() {
		e.Published = j.PostedAt.UTC().Format(time.RFC3339)
	}
	for _, v := range j.VisaCodes {
		v = channel.Truncate(v, 100)
		e.Categories = append(e.Categories, atomCategory{Term: v, Label: "Visa: " + v})
	}
	return e
}

// summary is the job in one line of text.
func summary(j channel.Job) string {
	parts := []string{}
	for _, s := range []string{j.Company, j.Where(), j.Salary, visaLine(j), j.Seniority} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " · ")
}

func visaLine(j channel.Job) string {
	if j.SponsorshipUnknown() {
		return channel.SponsorshipNotStated
	}
	return "Visa: " + j.Visas()
}

// contentHTML is the job as a small HTML fragment (escaped once here,
// and once more by the XML encoder, as type="html" requires).
func contentHTML(j channel.Job) string {
	var b strings.Builder
	b.WriteString("<p>")
	if j.URL != "" {
		fmt.Fprintf(&b, `<a href="%s"><strong>%s</strong></a>`, html.EscapeString(j.URL), html.EscapeString(j.Title))
	} else {
		fmt.Fprintf(&b, "<strong>%s</strong>", html.EscapeString(j.Title))
	}
	b.WriteString("</p><ul>")
	for _, s := range []string{j.Company, j.Where(), j.Salary, visaLine(j), j.Seniority, j.Posted()} {
		if s != "" {
			b.WriteString("<li>" + html.EscapeString(s) + "</li>")
		}
	}
	b.WriteString("</ul>")
	return b.String()
}
