package vizkit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnnviz/cnnviz/models"
	"github.com/cnnviz/cnnviz/models/vgg"
	"github.com/cnnviz/cnnviz/vizkit/internal/vtest"
	"github.com/cnnviz/cnnviz/vizkit/npy"
)

// TestLayerTableGolden compares the computed output shapes with the shapes
// PyTorch recorded in every fixture's meta.json.
func TestLayerTableGolden(t *testing.T) {
	for _, metaPath := range goldenCases(t) {
		raw, err := os.ReadFile(metaPath)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			goldenMeta
			Layers []struct {
				Name  string `json:"name"`
				Shape []int  `json:"output_shape"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatal(err)
		}
		shape, _, err := npy.ReadFile(filepath.Join(goldenDir, meta.InputFile))
		if err != nil {
			t.Fatal(err)
		}
		m := vtest.GoldenModel(t, meta.Weights["safetensors"])
		table, err := LayerTable(m, shape[2], shape[3])
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]LayerRow{}
		for _, r := range table.Rows {
			byName[r.Name] = r
		}
		checked := 0
		for _, l := range meta.Layers {
			if l.Name == "flatten" {
				continue
			}
			row, ok := byName[l.Name]
			if !ok {
				t.Fatalf("%s: layer %s missing from the table", metaPath, l.Name)
			}
			if fmt.Sprint(row.Shape) != fmt.Sprint(l.Shape[1:]) {
				t.Errorf("%s: %s output shape %v, PyTorch %v", metaPath, l.Name, row.Shape, l.Shape[1:])
			}
			checked++
		}
		if checked != len(table.Rows) {
			t.Errorf("%s: checked %d of %d rows", metaPath, checked, len(table.Rows))
		}
	}
}

// TestLayerTableStandard checks torchvision's published numbers at 224×224
// (parameter counts from torchvision's model docs) without building weights.
func TestLayerTableStandard(t *testing.T) {
	for _, tc := range []struct {
		arch   string
		params int
	}{
		{"vgg11", 132863336}, {"vgg13", 133047848}, {"vgg16", 138357544}, {"vgg19", 143667240},
		{"vgg11_bn", 132868840}, {"vgg16_bn", 138365992},
	} {
		cfg, err := vgg.StandardConfig(tc.arch, 1000, 1)
		if err != nil {
			t.Fatal(err)
		}
		table, err := LayerShapes(tc.arch, cfg.Layers(), 224, 224)
		if err != nil {
			t.Fatal(err)
		}
		if table.TotalParams != tc.params {
			t.Errorf("%s: %d parameters, torchvision has %d", tc.arch, table.TotalParams, tc.params)
		}
		byName := map[string]string{}
		for _, r := range table.Rows {
			byName[r.Name] = r.ShapeString()
		}
		if byName["features.0"] != "(64, 224, 224)" || byName["avgpool"] != "(512, 7, 7)" || byName["classifier.0"] != "(4096)" || byName["classifier.6"] != "(1000)" {
			t.Errorf("%s shapes: %v", tc.arch, byName)
		}
	}
	cfg, _ := vgg.StandardConfig("vgg11", 1000, 1)
	table, err := LayerShapes("vgg11", cfg.Layers(), 224, 224)
	if err != nil {
		t.Fatal(err)
	}
	if table.Rows[20].Name != "features.20" || table.Rows[20].ShapeString() != "(512, 7, 7)" || table.Rows[5].ShapeString() != "(128, 56, 56)" {
		t.Fatalf("vgg11 rows: %+v %+v", table.Rows[5], table.Rows[20])
	}
	text := table.String()
	for _, s := range []string{"features.19", "ReLU", "(512, 14, 14)", "132863336", "total"} {
		if !strings.Contains(text, s) {
			t.Errorf("text table lacks %q:\n%s", s, text)
		}
	}
	html, err := table.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, "<table") || !strings.Contains(html, "(512, 7, 7)") || !strings.Contains(html, "132863336") {
		t.Fatalf("HTML table: %s", html[:min(400, len(html))])
	}
	var _ HTMLer = table

	// Errors: too small, inconsistent Linear, unknown kind.
	if _, err := LayerShapes("vgg11", cfg.Layers(), 16, 300); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("16×300 input: %v", err)
	}
	bad := append([]models.Layer(nil), cfg.Layers()...)
	for i := range bad {
		if bad[i].Name == "classifier.3" {
			bad[i].In = 7
		}
	}
	if _, err := LayerShapes("vgg11", bad, 224, 224); err == nil || !strings.Contains(err.Error(), "classifier.3 (Linear) expects 7 inputs") {
		t.Errorf("inconsistent Linear: %v", err)
	}
	if _, err := LayerShapes("x", []models.Layer{{Name: "odd", Kind: "Conv3d"}}, 8, 8); err == nil || !strings.Contains(err.Error(), "Conv3d") {
		t.Errorf("unknown kind: %v", err)
	}
	m, err := vgg.NewRandom("vgg11", 10, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := LayerTable(m, 8, 8); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("LayerTable 8×8: %v", err)
	}
}
