"""The policy pack: one set of rules, two runners (`taly policy check` offline, CrossGuard in `pulumi preview`)."""
