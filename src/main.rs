fn main() {
    print!("{}", metallb::api::crd::to_yaml().unwrap());
}
