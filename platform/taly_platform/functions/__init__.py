"""Code the estate deploys as AWS Lambda functions (each module self-contained: boto3 and the stdlib only)."""
