fn main() { println!("jetdir"); }
