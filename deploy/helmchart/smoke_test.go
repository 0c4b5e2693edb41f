package helmchart

import "testing"

func TestSmoke(t *testing.T) {
	ch, err := LoadChart("../helm/vrsky")
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{"", "small", "ha", "external-everything"} {
		vals := map[string]any{}
		if set != "" {
			vals, err = ReadValues("../helm/vrsky/ci/" + set + "-values.yaml")
			if err != nil {
				t.Fatal(err)
			}
		}
		r, err := Render(ch, vals, "vrsky", "vrsky")
		if err != nil {
			t.Fatalf("%s: %v", set, err)
		}
		t.Logf("%s: %v", set, r.Kinds())
		if err := Check(r); err != nil {
			t.Errorf("%s: %v", set, err)
		}
		t.Log(Lint("../helm/vrsky", vals))
	}
}
