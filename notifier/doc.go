// Package notifier sends what matched: it runs the digest schedule (instant
// windows, daily and weekly digests at the subscriber's local hour, quiet
// hours and the daily cap for instant alerts), claims each due digest
// exactly once across replicas, renders it from the embedded templates
// and sends it over a pool of SMTP connections, hands it to the webhook
// queue, posts it to the subscription's chat channels (Chat) and appends
// it to its private feed (Feed). Work waits in Redis between steps, each
// channel with its own line in the digest's ledger, so a crash or a
// temporary failure delays a digest but never loses it.
package notifier
