package main

// quote is the whole payload of this service. The dev-loop tests and
// benchmarks edit this line in a scratch copy, so keep it on one line.
const quote = "Strange women lying in ponds distributing swords is no basis for a system of government."
