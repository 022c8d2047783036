package imageio

import (
	_ "embed"
	"fmt"
	"strings"
)

// imagenetClasses is torchvision's ImageNet-1k category list
// (VGG11_Weights.IMAGENET1K_V1.meta["categories"]), one name per line in class
// order; regenerate with scripts/gen_imagenet_classes.py.
//
//go:embed imagenet_classes.txt
var imagenetClasses string

var classNames = strings.Split(strings.TrimSuffix(imagenetClasses, "\n"), "\n")

// NumImageNetClasses is the number of ImageNet-1k classes.
const NumImageNetClasses = 1000

// ImageNetClasses returns a fresh copy of the 1000 ImageNet-1k class names in
// class-index order, as torchvision names them (index 281 is "tabby", 0 is
// "tench").
func ImageNetClasses() []string {
	return append([]string(nil), classNames...)
}

// ClassName returns the ImageNet name of class i (e.g. ClassName(281) ==
// "tabby"), or "class 1200 (out of range)" style text for an index outside
// [0, 1000); use [CheckClass] to get an error instead.
func ClassName(i int) string {
	if i < 0 || i >= len(classNames) {
		return fmt.Sprintf("class %d (out of range)", i)
	}
	return classNames[i]
}

// Label returns the index and name of class i, e.g. Label(281) == "281 tabby";
// an index outside [0, 1000) gives e.g. "1200 (out of range)".
func Label(i int) string {
	if i < 0 || i >= len(classNames) {
		return fmt.Sprintf("%d (out of range)", i)
	}
	return fmt.Sprintf("%d %s", i, classNames[i])
}

// CheckClass returns an error unless 0 <= i < n, where n is the number of
// classes the model outputs, e.g. "class index 1200 is out of range for a model
// with 1000 classes".
func CheckClass(i, n int) error {
	if n <= 0 {
		return fmt.Errorf("imageio: a model with %d classes cannot have class index %d", n, i)
	}
	if i < 0 || i >= n {
		return fmt.Errorf("imageio: class index %d is out of range for a model with %d classes (valid: 0 to %d)", i, n, n-1)
	}
	return nil
}
