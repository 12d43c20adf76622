package gateway

// BudgetFree reports whether no Cat holds any of s's budget.
func BudgetFree(s *Store) bool {
	if !s.budget.TryAcquire(s.opts.MaxBuffer) {
		return false
	}
	s.budget.Release(s.opts.MaxBuffer)
	return true
}
