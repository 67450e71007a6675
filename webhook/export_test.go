package webhook

// RecoverOrphans exposes recoverOrphans to the tests, which call it to
// see one round's decision without waiting for Run's ticker.
var RecoverOrphans = (*Service).recoverOrphans
