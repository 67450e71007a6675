package main

import (
	"github.com/jobalert/jobalert/channel/feed"
	"github.com/jobalert/jobalert/channel/telegram"
	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/store"
)

// Each stage declares the interfaces it consumes; the producing packages
// do not import their consumers, so the wiring checks here that the real
// implementations satisfy them.
var (
	_ consumer.Recorder     = (*store.Redis)(nil)
	_ consumer.KeyedMatcher = (*matcher.Index)(nil) // the consumer passes slot keys on when its Matcher has them
	_ notifier.Store        = (*store.Redis)(nil)
	_ notifier.Webhooks     = webhookQueue{}
	_ notifier.Chat         = slackChat{}
	_ notifier.Chat         = discordChat{}
	_ notifier.Chat         = telegramChat{}
	_ notifier.Feed         = (*feed.Store)(nil)
	_ consumer.Recorder     = (*feedTap)(nil)
	_ feedMembership        = (*store.Redis)(nil)
	_ telegram.Binder       = telegramBinder{}
)
