package imageio

import (
	"strings"
	"testing"
)

func TestImageNetClasses(t *testing.T) {
	names := ImageNetClasses()
	if len(names) != NumImageNetClasses {
		t.Fatalf("%d class names, want %d", len(names), NumImageNetClasses)
	}
	for i, want := range map[int]string{0: "tench", 1: "goldfish", 281: "tabby", 282: "tiger cat", 285: "Egyptian cat", 967: "espresso", 999: "toilet tissue"} {
		if names[i] != want || ClassName(i) != want {
			t.Errorf("class %d = %q / %q, want %q", i, names[i], ClassName(i), want)
		}
	}
	seen := map[string]int{}
	for i, n := range names {
		if n == "" || strings.TrimSpace(n) != n {
			t.Errorf("class %d has name %q", i, n)
		}
		if j, dup := seen[n]; dup {
			t.Errorf("classes %d and %d are both %q", j, i, n)
		}
		seen[n] = i
	}
	names[0] = "changed"
	if ClassName(0) != "tench" {
		t.Error("ImageNetClasses returned the package's own slice")
	}
	if got := Label(281); got != "281 tabby" {
		t.Errorf("Label(281) = %q", got)
	}
	if got := Label(1200); got != "1200 (out of range)" {
		t.Errorf("Label(1200) = %q", got)
	}
	if got := ClassName(-1); got != "class -1 (out of range)" {
		t.Errorf("ClassName(-1) = %q", got)
	}
}

func TestCheckClass(t *testing.T) {
	if err := CheckClass(999, 1000); err != nil {
		t.Errorf("CheckClass(999, 1000) = %v", err)
	}
	if err := CheckClass(0, 1); err != nil {
		t.Errorf("CheckClass(0, 1) = %v", err)
	}
	for _, tc := range []struct {
		i, n int
		want string
	}{
		{1200, 1000, "class index 1200 is out of range for a model with 1000 classes"},
		{-1, 1000, "class index -1 is out of range for a model with 1000 classes"},
		{1000, 1000, "valid: 0 to 999"},
		{0, 0, "a model with 0 classes"},
	} {
		err := CheckClass(tc.i, tc.n)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckClass(%d, %d) = %v, want an error containing %q", tc.i, tc.n, err, tc.want)
		}
	}
}
