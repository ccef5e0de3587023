package sqlstore

import "testing"

func TestStatementName(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"SELECT a, b FROM oauth2_refresh r LEFT JOIN clients c ON c.id = r.client_id WHERE signature = ?", "select oauth2_refresh"},
		{insertRefresh, "insert oauth2_refresh"},
		{"UPDATE users SET name = ? WHERE subject = ?", "update users"},
		{"DELETE FROM login_states WHERE id = ?", "delete login_states"},
		{"SELECT wxoidc_rotate_refresh(?, ?)", "select wxoidc_rotate_refresh"},
		{"WITH a AS (DELETE FROM login_states WHERE x = ? RETURNING data)\nSELECT data FROM a", "with select a"},
		{"WITH r0 AS (INSERT INTO rate_limits (name) SELECT ? RETURNING 1)\nINSERT INTO login_states (x) SELECT ? WHERE EXISTS (SELECT 1 FROM r0)", "with insert login_states"},
		{"", "statement"},
	} {
		if got := statementName(tc.query); got != tc.want {
			t.Errorf("statementName(%.40q) = %q, want %q", tc.query, got, tc.want)
		}
	}
}
