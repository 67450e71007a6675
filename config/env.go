package config

import "os"

// envconfig reads os.Getenv; these are the only places the package touches
// the process environment.
var (
	lookupEnv = os.LookupEnv
	setEnv    = func(k, v string) { _ = os.Setenv(k, v) }
	unsetEnv  = func(k string) { _ = os.Unsetenv(k) }
)
