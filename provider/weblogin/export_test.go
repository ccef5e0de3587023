package weblogin

import "context"

// WorkPushes runs one round of the push worker (RunPushWorker's tick).
func (a *Authenticator) WorkPushes(ctx context.Context) { a.workPushes(ctx) }
