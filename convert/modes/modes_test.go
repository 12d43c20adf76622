package modes

import "testing"

func TestModes(t *testing.T) {
	if got := Enum(); got != "plain,estargz,encrypted" {
		t.Errorf("Enum() = %q", got)
	}
	if got := Want(); got != "plain, estargz or encrypted" {
		t.Errorf("Want() = %q", got)
	}
	for _, m := range All() {
		if !m.Valid() {
			t.Errorf("%s not valid", m)
		}
	}
	for _, m := range []Mode{"", "Plain", "estargz+encrypted", "zstd"} {
		if m.Valid() {
			t.Errorf("%q valid", m)
		}
	}
	for _, tc := range []struct {
		m          Mode
		tag, label string
	}{
		{"", "3.20", "src"},
		{Plain, "3.20", "src"},
		{Estargz, "3.20-estargz", "src (estargz)"},
		{Encrypted, "3.20-encrypted", "src (encrypted)"},
	} {
		if got := tc.m.Tag("3.20"); got != tc.tag {
			t.Errorf("%q.Tag = %q, want %q", tc.m, got, tc.tag)
		}
		if got := tc.m.Label("src"); got != tc.label {
			t.Errorf("%q.Label = %q, want %q", tc.m, got, tc.label)
		}
	}
}
