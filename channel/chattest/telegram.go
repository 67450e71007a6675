package chattest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
)

// TelegramMaxText is the most characters (UTF-16 code units, after the
// HTML is parsed) of a message's text (core.telegram.org/bots/api#sendmessage).
const TelegramMaxText = 4096

// TelegramMessage is a sendMessage call the fake accepted.
type TelegramMessage struct {
	ChatID    int64
	Text      string
	ParseMode string
}

// Telegram is a fake Bot API for one bot: getMe, sendMessage (checking
// the length and the HTML as Telegram does) and getUpdates (long polling
// over a queue of updates the test adds, confirming those before the
// offset, and answering 409 Conflict to a request that a newer
// getUpdates overtakes, as Telegram does when two readers poll).
type Telegram struct {
	URL      string // the API base URL, for JOBALERT_TELEGRAM_API_URL
	Token    string
	Username string
	// MaxPoll caps a getUpdates wait, whatever its timeout (tests stay fast).
	MaxPoll time.Duration
	script  script

	mu        sync.Mutex
	sent      []TelegramMessage
	blocked   map[int64]bool
	updates   []json.RawMessage // pending, in order
	nextID    int64
	confirmed int64 // updates below this id are confirmed
	polls     int
	conflicts int
	offsets   []int64
	waiting   chan struct{} // closed when an update is added
	inflight  chan struct{} // closed to end the getUpdates in flight with 409
}

// NewTelegram starts a fake Bot API for a bot with the given token.
func NewTelegram(tb testing.TB, token string) *Telegram {
	tg := &Telegram{Token: token, Username: "jobalert_test_bot", MaxPoll: 200 * time.Millisecond,
		blocked: map[int64]bool{}, nextID: 100, waiting: make(chan struct{})}
	srv := start(tb, tg)
	tg.URL = srv.URL
	return tg
}

// RateLimit makes the next n Bot API calls answer Telegram's 429:
// {"ok":false,"error_code":429,"description":"Too Many Requests: retry
// after N","parameters":{"retry_after":N}}.
func (tg *Telegram) RateLimit(n, retryAfter int) {
	tg.script.push(n, func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		writeTG(w, 429, fmt.Sprintf("Too Many Requests: retry after %d", retryAfter), map[string]any{"retry_after": retryAfter})
	})
}

// Block makes the chat answer as one whose user blocked the bot: 403.
func (tg *Telegram) Block(chatID int64) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.blocked[chatID] = true
}

// AddUpdate queues a private-chat message from chatID with text and
// returns its update_id.
func (tg *Telegram) AddUpdate(chatID int64, text string) int64 {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.nextID++
	u := map[string]any{"update_id": tg.nextID, "message": map[string]any{
		"message_id": tg.nextID, "date": time.Now().Unix(), "text": text,
		"chat": map[string]any{"id": chatID, "type": "private", "first_name": "Ada"},
		"from": map[string]any{"id": chatID, "is_bot": false, "first_name": "Ada"},
	}}
	b, _ := json.Marshal(u)
	tg.updates = append(tg.updates, b)
	close(tg.waiting)
	tg.waiting = make(chan struct{})
	return tg.nextID
}

// Sent returns the messages accepted so far.
func (tg *Telegram) Sent() []TelegramMessage {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]TelegramMessage(nil), tg.sent...)
}

// Polls returns how many getUpdates calls were made, how many ended in a
// 409 Conflict, and the offsets they asked for.
func (tg *Telegram) Polls() (polls, conflicts int, offsets []int64) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.polls, tg.conflicts, append([]int64(nil), tg.offsets...)
}

func writeTG(w http.ResponseWriter, code int, desc string, params map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]any{"ok": false, "error_code": code, "description": desc}
	if params != nil {
		body["parameters"] = params
	}
	json.NewEncoder(w).Encode(body)
}

func writeOK(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

// params reads a Bot API call's parameters from JSON, a urlencoded form
// or multipart/form-data (which github.com/go-telegram/bot sends).
func params(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil {
			return nil, err
		}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				out[k] = v
			default:
				b, _ := json.Marshal(v)
				out[k] = string(b)
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			if strings.Contains(err.Error(), "EOF") { // a call without parameters
				return out, nil
			}
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			out[k] = v[0]
		}
	default:
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k, v := range r.Form {
			out[k] = v[0]
		}
	}
	return out, nil
}

func (tg *Telegram) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	tok, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		writeTG(w, 404, "Not Found", nil)
		return
	}
	if tok != tg.Token {
		writeTG(w, 401, "Unauthorized", nil)
		return
	}
	if f := tg.script.pop(); f != nil {
		f(w)
		return
	}
	p, err := params(r)
	if err != nil {
		writeTG(w, 400, "Bad Request: can't parse request parameters", nil)
		return
	}
	switch method {
	case "getMe":
		writeOK(w, map[string]any{"id": 7000001, "is_bot": true, "first_name": "jobalert", "username": tg.Username})
	case "sendMessage":
		tg.sendMessage(w, p)
	case "getUpdates":
		tg.getUpdates(w, r, p)
	default:
		writeTG(w, 404, "Not Found: method not found", nil)
	}
}

func (tg *Telegram) sendMessage(w http.ResponseWriter, p map[string]string) {
	chat, err := strconv.ParseInt(p["chat_id"], 10, 64)
	if err != nil {
		writeTG(w, 400, "Bad Request: chat not found", nil)
		return
	}
	text := p["text"]
	if strings.TrimSpace(text) == "" {
		writeTG(w, 400, "Bad Request: message text is empty", nil)
		return
	}
	visible := text
	if p["parse_mode"] == "HTML" {
		v, err := ParseTelegramHTML(text)
		if err != nil {
			writeTG(w, 400, "Bad Request: can't parse entities: "+err.Error(), nil)
			return
		}
		visible = v
	}
	if n := len(utf16.Encode([]rune(visible))); n > TelegramMaxText {
		writeTG(w, 400, "Bad Request: message is too long", nil)
		return
	}
	tg.mu.Lock()
	blocked := tg.blocked[chat]
	if !blocked {
		tg.sent = append(tg.sent, TelegramMessage{ChatID: chat, Text: text, ParseMode: p["parse_mode"]})
	}
	n := len(tg.sent)
	tg.mu.Unlock()
	if blocked {
		writeTG(w, 403, "Forbidden: bot was blocked by the user", nil)
		return
	}
	writeOK(w, map[string]any{"message_id": n, "date": time.Now().Unix(), "chat": map[string]any{"id": chat, "type": "private"}, "text": visible})
}

func (tg *Telegram) getUpdates(w http.ResponseWriter, r *http.Request, p map[string]string) {
	offset, _ := strconv.ParseInt(p["offset"], 10, 64)
	timeout, _ := strconv.Atoi(p["timeout"])
	wait := min(time.Duration(timeout)*time.Second, tg.MaxPoll)

	tg.mu.Lock()
	tg.polls++
	tg.offsets = append(tg.offsets, offset)
	if tg.inflight != nil {
		close(tg.inflight) // a newer reader overtakes the one waiting
	}
	mine := make(chan struct{})
	tg.inflight = mine
	tg.mu.Unlock()
	defer func() {
		tg.mu.Lock()
		if tg.inflight == mine {
			tg.inflight = nil
		}
		tg.mu.Unlock()
	}()

	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		tg.mu.Lock()
		if offset > tg.confirmed {
			tg.confirmed = offset
		}
		var out []json.RawMessage
		for _, u := range tg.updates {
			var head struct {
				ID int64 `json:"update_id"`
			}
			_ = json.Unmarshal(u, &head)
			if head.ID >= tg.confirmed {
				out = append(out, u)
			}
		}
		tg.updates = out // confirmed ones are gone for good
		waiting := tg.waiting
		tg.mu.Unlock()
		if len(out) > 0 {
			writeOK(w, out)
			return
		}
		select {
		case <-waiting:
		case <-mine:
			tg.mu.Lock()
			tg.conflicts++
			tg.mu.Unlock()
			writeTG(w, 409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running", nil)
			return
		case <-deadline.C:
			writeOK(w, []json.RawMessage{})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// telegramTags are the tags parse_mode=HTML accepts.
var telegramTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true, "s": true, "strike": true,
	"del": true, "a": true, "code": true, "pre": true, "span": true, "tg-spoiler": true, "tg-emoji": true,
	"blockquote": true,
}

// ParseTelegramHTML checks text as Telegram parses parse_mode=HTML: only
// its tags, properly nested; &, < and > only as entities (&lt; &gt; &amp;
// &quot; or numeric) outside tags. It returns the visible text.
func ParseTelegramHTML(text string) (string, error) {
	var out strings.Builder
	var stack []string
	for i := 0; i < len(text); {
		switch c := text[i]; c {
		case '<':
			j := strings.IndexByte(text[i:], '>')
			if j < 0 {
				return "", fmt.Errorf("unclosed start tag at byte offset %d", i)
			}
			tag := text[i+1 : i+j]
			i += j + 1
			if name, closing := strings.CutPrefix(tag, "/"); closing {
				if len(stack) == 0 || stack[len(stack)-1] != name {
					return "", fmt.Errorf("can't find end tag corresponding to start tag %q", name)
				}
				stack = stack[:len(stack)-1]
				continue
			}
			name, attrs, _ := strings.Cut(tag, " ")
			if !telegramTags[name] {
				return "", fmt.Errorf("unsupported start tag %q at byte offset %d", name, i-j-1)
			}
			if name == "a" && !strings.HasPrefix(attrs, `href="`) {
				return "", errors.New("an <a> tag needs href")
			}
			if strings.ContainsAny(strings.ReplaceAll(attrs, `href="`, ""), "<") {
				return "", errors.New("unescaped < in an attribute")
			}
			stack = append(stack, name)
		case '>':
			return "", fmt.Errorf("unexpected > at byte offset %d", i)
		case '&':
			j := strings.IndexByte(text[i:], ';')
			if j < 0 {
				return "", fmt.Errorf("character entity expected at byte offset %d", i)
			}
			ent := text[i+1 : i+j]
			switch {
			case ent == "lt":
				out.WriteByte('<')
			case ent == "gt":
				out.WriteByte('>')
			case ent == "amp":
				out.WriteByte('&')
			case ent == "quot":
				out.WriteByte('"')
			case strings.HasPrefix(ent, "#"):
				out.WriteByte('?')
			default:
				return "", fmt.Errorf("unsupported entity &%s; at byte offset %d", ent, i)
			}
			i += j + 1
		default:
			out.WriteByte(c)
			i++
		}
	}
	if len(stack) > 0 {
		return "", fmt.Errorf("can't find end tag corresponding to start tag %q", stack[len(stack)-1])
	}
	return out.String(), nil
}
