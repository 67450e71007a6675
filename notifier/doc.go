// Package notifier sends what matched: it runs the digest schedule (instant
// windows, daily and weekly digests at the subscriber's local hour), claims
// each due digest exactly once across replicas, renders it from the
// embedded templates and sends it over a pool of SMTP connections, and
// hands it to the webhook queue. Work waits in Redis between steps, so a
// crash or a temporary SMTP failure delays a digest but never loses it.
package notifier
