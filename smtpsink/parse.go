package smtpsink

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
)

// maxPartDepth bounds multipart nesting.
const maxPartDepth = 8

// parseInto fills m's header and decoded fields from m.Raw. A parse error is
// kept in m.ParseError; whatever was decoded before it stays.
func parseInto(m *Message) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		m.ParseError = err
		return
	}
	m.Header = msg.Header
	m.MessageID = msg.Header.Get("Message-Id")
	dec := mime.WordDecoder{}
	if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
		m.Subject = subj
	} else {
		m.Subject = msg.Header.Get("Subject")
	}
	m.ParseError = walkPart(m, textproto.MIMEHeader(msg.Header), msg.Body, 0)
}

// walkPart decodes one MIME entity, recursing into multiparts, and keeps the
// first text/plain and text/html bodies that are not attachments.
func walkPart(m *Message, h textproto.MIMEHeader, body io.Reader, depth int) error {
	if depth > maxPartDepth {
		return fmt.Errorf("multipart nested deeper than %d", maxPartDepth)
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content-type %q: %w", ct, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			if err := walkPart(m, p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}
	if disp, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); disp == "attachment" {
		return nil
	}
	if mt != "text/plain" && mt != "text/html" {
		return nil
	}
	if (mt == "text/plain" && m.Text != "") || (mt == "text/html" && m.HTML != "") {
		return nil
	}
	b, err := io.ReadAll(transferDecoder(h.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		return fmt.Errorf("%s body: %w", mt, err)
	}
	if mt == "text/plain" {
		m.Text = string(b)
	} else {
		m.HTML = string(b)
	}
	return nil
}

func transferDecoder(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &newlineStripper{r: r})
	}
	return r
}

// newlineStripper drops CR and LF, which base64 bodies wrap with.
type newlineStripper struct{ r io.Reader }

func (n *newlineStripper) Read(p []byte) (int, error) {
	for {
		c, err := n.r.Read(p)
		j := 0
		for _, b := range p[:c] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
