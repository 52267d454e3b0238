// bundle-validate: checks an OLM bundle directory (manifests/ and metadata/) with the
// validators operator-sdk's `bundle validate` runs by default (operator-framework/api's
// pkg/validation), plus the OperatorHub, capability, category and good-practice checks, and
// install mode types (unknown or repeated ones, which that package lets through). Prints every error and warning; exits 1 when
// there is an error, 2 when the bundle cannot be read.
//
//	bundle-validate BUNDLE_DIR
package main

import (
	"fmt"
	"os"
	"path/filepath"

	apimanifests "github.com/operator-framework/api/pkg/manifests"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apivalidation "github.com/operator-framework/api/pkg/validation"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bundle-validate BUNDLE_DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	bundle, err := apimanifests.GetBundleFromDir(filepath.Join(dir, "manifests"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", dir, err)
		os.Exit(2)
	}
	objects := bundle.ObjectsToValidate()
	validators := apivalidation.DefaultBundleValidators.WithValidators(
		apivalidation.OperatorHubV2Validator,
		apivalidation.StandardCapabilitiesValidator,
		apivalidation.StandardCategoriesValidator,
		apivalidation.GoodPracticesValidator,
	)
	errorCount := 0
	for _, result := range validators.Validate(objects...) {
		for _, e := range result.Errors {
			errorCount++
			fmt.Printf("ERROR %s: %s\n", result.Name, e.Error())
		}
		for _, w := range result.Warnings {
			fmt.Printf("WARNING %s: %s\n", result.Name, w.Error())
		}
	}
	// operator-framework/api v0.36 neither refuses an unknown install mode type nor (its set
	// is never filled) a duplicate one; OLM would then misjudge the OperatorGroup.
	if bundle.CSV != nil {
		seen := map[operatorsv1alpha1.InstallModeType]bool{}
		for _, mode := range bundle.CSV.Spec.InstallModes {
			switch mode.Type {
			case operatorsv1alpha1.InstallModeTypeOwnNamespace, operatorsv1alpha1.InstallModeTypeSingleNamespace,
				operatorsv1alpha1.InstallModeTypeMultiNamespace, operatorsv1alpha1.InstallModeTypeAllNamespaces:
			default:
				errorCount++
				fmt.Printf("ERROR %s: unknown install mode type %q\n", bundle.CSV.GetName(), mode.Type)
			}
			if seen[mode.Type] {
				errorCount++
				fmt.Printf("ERROR %s: install mode %q listed twice\n", bundle.CSV.GetName(), mode.Type)
			}
			seen[mode.Type] = true
		}
	}
	if errorCount > 0 {
		fmt.Printf("%s: %d error(s)\n", dir, errorCount)
		os.Exit(1)
	}
	fmt.Printf("%s: valid\n", dir)
}
