// Package jobevent holds the event model every stage of the pipeline
// shares: what happened to a job (Kind), one decoded event (Event) and an
// event with the subscriptions it matched (Matched). It has no logic
// beyond naming kinds; decoding and validating events is the consumer's
// work, recording them the store's.
//
// It imports only the standard library and matcher (for matcher.Job), so
// any stage may import it without depending on another stage.
package jobevent

import "github.com/jobalert/jobalert/matcher"

// Kind is what an event says happened to a job.
type Kind uint8

// The event kinds, one per subject.
const (
	Created Kind = iota + 1 // jobs.created: a new job
	Updated                 // jobs.updated: the job's fields changed
	Closed                  // jobs.closed: the job is gone
)

// String returns the kind's name as used in subjects and metric labels.
func (k Kind) String() string {
	switch k {
	case Created:
		return "created"
	case Updated:
		return "updated"
	case Closed:
		return "closed"
	}
	return "unknown"
}

// Subject returns the subject that carries events of kind k.
func (k Kind) Subject() string { return "jobs." + k.String() }

// Event is one decoded job event.
type Event struct {
	Kind      Kind
	Job       matcher.Job // for Closed, only ID is set
	StreamSeq uint64      // sequence in the JOBS stream; 0 when not from a stream
	Subject   string
	// Dropped lists the visa values the event carried that are not visa
	// codes or aliases (docs/matching.md §4); they were left out of Job.VisaTypes
	// and the rest of the event is used.
	Dropped []string
}

// Matched is one event of a batch with the subscriptions it matched;
// closed events never match.
type Matched struct {
	Event           Event
	SubscriptionIDs []string
	// Keys, when not nil, holds a small integer per subscription id (the
	// index's slot): within a batch, equal ids almost always have equal
	// keys, so whoever records the batch may group matches by key with an
	// array instead of hashing ids, as long as it checks the ids (a filter
	// changed during the batch may move). Nil when the matcher gives no
	// keys.
	Keys []uint32
}

// Repost is what the consumer found about an event's job id before
// recording it (docs/events.md, Reposts): Of is the id the event is
// recorded under (the event's own id for a new job), Reason why it is not
// the event's own id.
type Repost struct {
	Of     string
	Reason RepostReason
}

// RepostReason says why an event's job was taken for another job.
type RepostReason string

// The reasons of Repost; "" is a job of its own.
const (
	RepostNone        RepostReason = ""             // the job is its own
	RepostCanonicalID RepostReason = "canonical_id" // same producer-given canonical_id
	RepostApplyURL    RepostReason = "apply_url"    // same url
	RepostSameRole    RepostReason = "same_role"    // same normalised company, title and first location
)
