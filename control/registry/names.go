package registry

import (
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type fieldError = field.Error

// generatedSuffixLen is upstream's: five characters from an alphabet without
// vowels or look-alikes (k8s.io/apimachinery/pkg/util/rand.String).
const generatedSuffixLen = 5

// maxGeneratedPrefix keeps prefix+suffix within a 63-character DNS label, as
// upstream's SimpleNameGenerator does.
const maxGeneratedPrefix = 63 - generatedSuffixLen

func generateName(prefix string) string {
	if len(prefix) > maxGeneratedPrefix {
		prefix = prefix[:maxGeneratedPrefix]
	}
	return prefix + rand.String(generatedSuffixLen)
}

func fieldRequired(parent, child, detail string) *field.Error {
	return field.Required(field.NewPath(parent).Child(child), detail)
}

func fieldInvalidReplicas(replicas int32) *field.Error {
	return field.Invalid(field.NewPath("spec", "replicas"), replicas, "must be greater than or equal to 0")
}
