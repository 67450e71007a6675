// Package templates holds jobalert's embedded templates: the emails under
// email/ (each an HTML and a plain-text file, wrapped by the layout files)
// and the web pages under web/. They are read from FS and parsed once at
// start by their users (notifier.NewRenderer for the emails); a template
// that does not parse makes start fail.
package templates

import "embed"

// FS holds email/* and web/*.
//
//go:embed email/* web/*
var FS embed.FS
