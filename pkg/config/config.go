// Package config binds component settings to command-line flags and to
// SB_-prefixed environment variables, and reports invalid settings in a way
// that names the setting and the fix.
//
// Every component owns a Config struct with two methods:
//
//	RegisterFlags(prefix string, f *flag.FlagSet) // declares its flags, with help text that is the reference documentation
//	Validate() error                              // checks them, returning errors built with Invalid
//
// Load then fills the flag set from, in order of precedence: the command line,
// the SB_ environment variable derived from the flag name (flag
// "kafka.brokers" reads SB_KAFKA_BROKERS), a conventional alias registered
// with Alias (DATABASE_URL, REDIS_URL, KAFKA_BROKERS), and the flag default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// EnvPrefix prefixes the environment variable of every flag.
const EnvPrefix = "SB_"

// LookupEnv is the shape of os.LookupEnv; it is injected so tests and
// embedding programs control the environment.
type LookupEnv func(key string) (string, bool)

// EnvName returns the environment variable that sets the flag with the given
// name: "kafka.batch-timeout" becomes "SB_KAFKA_BATCH_TIMEOUT".
func EnvName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return EnvPrefix + strings.ToUpper(r.Replace(flagName))
}

// Aliases maps a flag name to a conventional, unprefixed environment
// variable that also sets it (for example "database.url" to "DATABASE_URL").
// The SB_ variable wins when both are set.
type Aliases map[string]string

// Load parses args into f, then sets every flag that was not given on the
// command line from its environment variable. It returns an error naming
// the variable when a value from the environment does not parse.
func Load(f *flag.FlagSet, args []string, env LookupEnv, aliases Aliases) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	var errs []error
	f.VisitAll(func(fl *flag.Flag) {
		if set[fl.Name] {
			return
		}
		name := EnvName(fl.Name)
		v, ok := env(name)
		if !ok {
			if alias, has := aliases[fl.Name]; has {
				name = alias
				v, ok = env(alias)
			}
		}
		if !ok {
			return
		}
		if err := f.Set(fl.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s=%q (flag -%s): %w", name, v, fl.Name, err))
		}
	})
	return errors.Join(errs...)
}

// Error is a setting that failed validation. Its message names the flag, its
// environment variable, what is wrong and how to fix it.
type Error struct {
	// Flag is the full flag name, prefix included.
	Flag string
	// Problem says what is wrong with the current value.
	Problem string
	// Fix says what to set instead.
	Fix string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("setting -%s (%s): %s", e.Flag, EnvName(e.Flag), e.Problem)
	if e.Fix != "" {
		msg += "; " + e.Fix
	}
	return msg
}

// Invalid builds the error for a setting that failed validation.
func Invalid(flagName, problem, fix string) error {
	return &Error{Flag: flagName, Problem: problem, Fix: fix}
}

// Checker accumulates validation failures so that Validate reports every bad
// setting at once instead of one per restart.
type Checker struct {
	prefix string
	errs   []error
}

// NewChecker returns a checker for flags registered under prefix.
func NewChecker(prefix string) *Checker { return &Checker{prefix: prefix} }

// Check records a failure for flag name (without prefix) when ok is false.
func (c *Checker) Check(ok bool, name, problem, fix string) {
	if !ok {
		c.errs = append(c.errs, Invalid(c.prefix+name, problem, fix))
	}
}

// Positive checks that a duration setting is greater than zero.
func (c *Checker) Positive(name string, d time.Duration) {
	c.Check(d > 0, name, fmt.Sprintf("must be greater than zero, got %s", d), "set a duration such as 5s")
}

// AtLeast checks that an integer setting is at least min.
func (c *Checker) AtLeast(name string, v, min int) {
	c.Check(v >= min, name, fmt.Sprintf("must be at least %d, got %d", min, v), fmt.Sprintf("set a value of %d or more", min))
}

// Err returns every recorded failure joined, or nil.
func (c *Checker) Err() error { return errors.Join(c.errs...) }

// StringList is a flag value holding a comma-separated list.
type StringList []string

// String implements flag.Value.
func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value; an empty string gives an empty list.
func (l *StringList) Set(v string) error {
	*l = nil
	for _, part := range strings.Split(v, ",") {
		if p := strings.TrimSpace(part); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
