package smtpsink

import (
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Stage is the point of an SMTP transaction a fault applies to.
type Stage int

const (
	// StageMail is the reply to MAIL FROM.
	StageMail Stage = iota + 1
	// StageRcpt is the reply to RCPT TO.
	StageRcpt
	// StageData is the reply to the end of the message data (the final
	// "."), after the whole message was read.
	StageData
)

func (st Stage) String() string {
	switch st {
	case StageMail:
		return "MAIL"
	case StageRcpt:
		return "RCPT"
	case StageData:
		return "DATA"
	}
	return "unknown"
}

// Action is what a fault does at its stage.
type Action int

const (
	// ActionReply answers with Fault.Code instead of 250.
	ActionReply Action = iota + 1
	// ActionStall delays the reply by Fault.Delay, then carries on.
	ActionStall
	// ActionReset closes the connection without replying. At StageData the
	// message was read in full and is recorded as unacknowledged.
	ActionReset
)

// Fault makes the sink misbehave. Faults are checked in the order they were
// injected; every matching stall applies, then the first matching reply or
// reset does. A fault that applied once counts one of its Times.
type Fault struct {
	Stage  Stage
	Action Action
	// Code is the reply code for ActionReply (default 421); 4xx is a
	// temporary failure, 5xx a permanent one.
	Code int
	// Message is the reply text; empty means a generic one.
	Message string
	// Delay is how long ActionStall holds the reply.
	Delay time.Duration
	// Recipients limits the fault to these addresses (case-insensitive):
	// at StageRcpt the address of the command, at StageData any recipient
	// of the message. Ignored at StageMail. Empty means every address.
	Recipients []string
	// Times is how many commands the fault applies to before it expires;
	// 0 means no limit.
	Times int
	// Until is when the fault expires; zero means never.
	Until time.Time
}

// FaultID names an injected fault for Remove.
type FaultID int

type fault struct {
	id FaultID
	Fault
	left int // remaining Times when Times > 0
}

// Inject adds a fault, effective from the next command, and returns its id.
func (s *Sink) Inject(f Fault) FaultID {
	if f.Action == ActionReply && f.Code == 0 {
		f.Code = 421
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFault++
	s.faults = append(s.faults, &fault{id: s.nextFault, Fault: f, left: f.Times})
	return s.nextFault
}

// Remove takes a fault away; removing an expired or unknown one is a no-op.
func (s *Sink) Remove(id FaultID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.id == id {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return
		}
	}
}

// ClearFaults removes every fault: the sink behaves again.
func (s *Sink) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// FailNext answers code (e.g. 421, 451, 550) at stage for the next n
// commands of that stage.
func (s *Sink) FailNext(stage Stage, code, n int) FaultID {
	return s.Inject(Fault{Stage: stage, Action: ActionReply, Code: code, Times: n})
}

// FailUntil answers code at stage to every command until t.
func (s *Sink) FailUntil(stage Stage, code int, t time.Time) FaultID {
	return s.Inject(Fault{Stage: stage, Action: ActionReply, Code: code, Until: t})
}

// RejectRecipients answers code (default 550) to RCPT TO for each of addrs,
// until the fault is removed: a hard bounce.
func (s *Sink) RejectRecipients(code int, addrs ...string) FaultID {
	if code == 0 {
		code = 550
	}
	return s.Inject(Fault{Stage: StageRcpt, Action: ActionReply, Code: code, Recipients: addrs,
		Message: "Requested action not taken: mailbox unavailable"})
}

// StallNext holds the reply at stage for d, for the next n commands of that
// stage (0: until removed). A stall at StageData that outlasts the client's
// timeout still ends in the message being recorded as acknowledged, as a
// real server would deliver it: the client's duplicate window again.
func (s *Sink) StallNext(stage Stage, d time.Duration, n int) FaultID {
	return s.Inject(Fault{Stage: stage, Action: ActionStall, Delay: d, Times: n})
}

// ResetNext closes the connection instead of replying at stage, for the next
// n commands of that stage. At StageMail or StageRcpt the message never
// reaches DATA; at StageData it was read in full and is kept as
// unacknowledged (see Unacknowledged).
func (s *Sink) ResetNext(stage Stage, n int) FaultID {
	return s.Inject(Fault{Stage: stage, Action: ActionReset, Times: n})
}

// verdict is what the faults decided for one command.
type verdict struct {
	delay time.Duration
	reset bool
	err   *smtp.SMTPError
}

// decide consumes the faults that apply to a command at stage with the
// given recipients.
func (s *Sink) decide(stage Stage, rcpts []string) verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var v verdict
	decided := false
	kept := s.faults[:0]
	for _, f := range s.faults {
		if !f.Until.IsZero() && !now.Before(f.Until) {
			continue // expired
		}
		if f.Stage != stage || !f.matches(rcpts) || (decided && f.Action != ActionStall) {
			kept = append(kept, f)
			continue
		}
		switch f.Action {
		case ActionStall:
			v.delay += f.Delay
		case ActionReset:
			v.reset, decided = true, true
		case ActionReply:
			v.err, decided = replyError(f.Code, f.Message), true
			s.rejected++
		}
		if f.Times > 0 {
			f.left--
			if f.left <= 0 {
				continue // used up
			}
		}
		kept = append(kept, f)
	}
	clear(s.faults[len(kept):])
	s.faults = kept
	return v
}

func (f *fault) matches(rcpts []string) bool {
	if len(f.Recipients) == 0 || f.Stage == StageMail {
		return true
	}
	for _, want := range f.Recipients {
		for _, r := range rcpts {
			if strings.EqualFold(want, r) {
				return true
			}
		}
	}
	return false
}

// applyFaults runs the faults for a MAIL or RCPT command and returns the
// error go-smtp should answer with, or nil for 250.
func (s *Sink) applyFaults(ss *session, stage Stage, rcpts []string) error {
	v := s.decide(stage, rcpts)
	if !s.stall(v.delay) {
		return errConnDropped
	}
	if v.reset {
		_ = ss.conn.Conn().Close()
		return errConnDropped
	}
	if v.err != nil {
		return v.err
	}
	return nil
}

// stall waits d, or less if the sink closes; it reports whether the sink is
// still open.
func (s *Sink) stall(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

func replyError(code int, msg string) *smtp.SMTPError {
	if msg == "" {
		switch {
		case code == 421:
			msg = "Service not available, try again later"
		case code >= 500:
			msg = "Requested action not taken"
		default:
			msg = "Temporary failure, try again later"
		}
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}
