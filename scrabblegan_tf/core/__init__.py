"""Foundation of the package: typed configs, the alphabet and text encoder, pixel conversions,
run folders on disk, text metrics, PNG pictures and progress figures. Imports nothing else of the
package."""
