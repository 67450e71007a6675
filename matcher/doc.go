// Package matcher owns the job and filter model, the text normalisation of
// docs/matching.md, and the matchers that decide which saved filters match a job:
// Reference, a plainly-correct linear scan kept forever as the test oracle,
// and Index, the fast path. The package is pure: no I/O, no clocks.
package matcher
