package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/webhook"
)

// Rate-limit kinds (store.Allow).
const (
	rateEmail = "confirm-email" // confirmation emails per address hash
	rateIP    = "confirm-ip"    // confirmation emails per client IP
)

// createError is why a subscription was not created: an HTTP status, an
// error code, a message and, for validation, the bad fields.
type createError struct {
	status     int
	code       string
	msg        string
	fields     fieldErrors
	retryAfter time.Duration
}

func (e *createError) write(w http.ResponseWriter) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.retryAfter.Seconds())))
	}
	writeError(w, e.status, e.code, e.msg, e.fields)
}

func invalid(fields fieldErrors) *createError {
	return &createError{status: http.StatusBadRequest, code: codeInvalid, fields: fields,
		msg: fmt.Sprintf("the subscription has %d invalid field(s); see fields", len(fields))}
}

// created is the 201 answer of POST /v1/subscriptions.
type created struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	WebhookSecret string `json:"webhook_secret,omitempty"`
}

// createSubscription is POST /v1/subscriptions.
func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		bodyError(w, err)
		return
	}
	in, bad := decodeSubscription(body)
	if _, ok := bad["body"]; ok {
		writeError(w, http.StatusBadRequest, codeInvalid, "the body must be a JSON object: "+bad["body"], nil)
		return
	}
	out, cerr := s.create(r, in, bad)
	if cerr != nil {
		cerr.write(w)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// readBody reads at most MaxBodyBytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
}

func bodyError(w http.ResponseWriter, err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge,
			fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes), nil)
		return
	}
	writeError(w, http.StatusBadRequest, codeInvalid, "could not read the body", nil)
}

// create validates in and, when it is good and within the limits, stores a
// pending subscription, registers its webhook and sends the confirmation
// email. If the email cannot be sent the subscription is deleted again and
// the answer is 503, so the person can simply retry.
func (s *Server) create(r *http.Request, in subscriptionInput, bad fieldErrors) (*created, *createError) {
	s.validate(&in, bad)
	if len(bad) > 0 {
		return nil, invalid(bad)
	}
	// The steps below must not stop half-way because the client left.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.SendTimeout+10*time.Second)
	defer cancel()
	log := s.log.With("email", email(in.Email))

	suppressed, err := s.deps.Store.IsSuppressed(ctx, in.Email)
	if err != nil {
		return nil, s.unavailable(log, "check suppression", err)
	}
	if suppressed {
		return nil, invalid(fieldErrors{"email": "this address asked not to get email from us, so it cannot be subscribed"})
	}
	n, err := s.deps.Store.CountByEmail(ctx, in.Email)
	if err != nil {
		return nil, s.unavailable(log, "count subscriptions", err)
	}
	if n >= int64(s.cfg.SubscriptionsPerEmail) {
		return nil, &createError{status: http.StatusTooManyRequests, code: codeLimited,
			msg: fmt.Sprintf("this address already has %d alerts, the most allowed; delete one from its manage page first", n)}
	}
	limits := []struct{ kind, value, msg string }{
		{rateEmail, store.EmailHash(in.Email), "too many confirmation emails were sent to this address in the last hour; try again later"},
		{rateIP, s.clientIP(r), "too many subscriptions from your network in the last hour; try again later"},
	}
	for i, l := range limits {
		limit := s.cfg.ConfirmationsPerHour
		if i == 1 {
			limit = s.cfg.ConfirmationsPerIPPerHour
		}
		ok, err := s.deps.Store.Allow(ctx, l.kind, l.value, limit, time.Hour)
		if err != nil {
			return nil, s.unavailable(log, "rate limit", err)
		}
		if !ok {
			log.Info("subscription refused: rate limit", "limit", l.kind)
			return nil, &createError{status: http.StatusTooManyRequests, code: codeLimited, msg: l.msg, retryAfter: time.Hour}
		}
	}

	now := s.cfg.Clock()
	sub := &store.Subscription{
		Email: in.Email, Filter: in.Filter, Frequency: in.Frequency, Timezone: in.Timezone,
		SendHour: in.SendHour, WeeklyDay: in.WeeklyDay, WebhookURL: in.WebhookURL, Status: store.StatusPending,
	}
	if err := s.deps.Store.CreateSubscription(ctx, sub, now); err != nil {
		return nil, s.unavailable(log, "create subscription", err)
	}
	log = log.With("subscription", sub.ID)
	out := &created{ID: sub.ID, Status: store.StatusPending}
	undo := func() {
		if sub.WebhookURL != "" {
			if err := s.deps.Webhooks.DeleteEndpoint(ctx, sub.ID); err != nil {
				log.Error("could not delete the webhook endpoint of a failed subscription", "err", err)
			}
		}
		if err := s.deps.Store.DeleteSubscription(ctx, sub.ID); err != nil {
			log.Error("could not delete a pending subscription after a failure", "err", err)
		}
	}

	if sub.WebhookURL != "" {
		secret, err := webhook.NewSecret()
		if err == nil {
			err = s.deps.Webhooks.SetEndpoint(ctx, sub.ID, sub.WebhookURL, secret)
		}
		if err != nil {
			undo()
			if errors.Is(err, webhook.ErrInvalidURL) {
				return nil, invalid(fieldErrors{"webhook_url": err.Error()})
			}
			return nil, s.unavailable(log, "register webhook", err)
		}
		out.WebhookSecret = secret
	}

	msg, err := s.deps.Renderer.Confirm(sub.Email, s.links.Confirm(sub.ID), notifier.Summary(sub.Filter))
	if err == nil {
		sendCtx, cancelSend := context.WithTimeout(ctx, s.cfg.SendTimeout)
		err = s.deps.Mailer.Send(sendCtx, msg)
		cancelSend()
	}
	if err != nil {
		undo()
		log.Error("confirmation email not sent; pending subscription deleted", "err", err)
		return nil, &createError{status: http.StatusServiceUnavailable, code: codeUnavailable, retryAfter: time.Minute,
			msg: "the confirmation email could not be sent; nothing was saved, please try again in a minute"}
	}
	log.Info("subscription created; confirmation sent", "frequency", sub.Frequency, "webhook", sub.WebhookURL != "")
	return out, nil
}

func (s *Server) unavailable(log *slog.Logger, op string, err error) *createError {
	log.Error("subscription not created", "op", op, "err", err)
	return &createError{status: http.StatusServiceUnavailable, code: codeUnavailable, retryAfter: time.Minute,
		msg: "the service is temporarily unavailable; nothing was saved, please try again in a minute"}
}
