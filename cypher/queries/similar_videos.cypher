// name: similar_videos
// description: Videos whose fused profile embedding is closest to the given video's (cosine, vector index video_embedding).
// param: video_id id - the video to start from
// param: k int[1..100] 10 how many similar videos to return

// The start video must have an embedding (written with its profile); otherwise there are no rows.
MATCH (v:Video {id: $video_id})
WHERE v.embedding IS NOT NULL
// Approximate nearest neighbours from the vector index; ask for one more because the video finds itself first.
CALL db.index.vector.queryNodes('video_embedding', $k + 1, v.embedding) YIELD node, score
WITH v, node, score
WHERE node <> v
// The neighbour's latest profile, when it has one, to show what it is about and how good it is.
OPTIONAL MATCH (node)-[:HAS_PROFILE]->(p:Profile {latest: true})
RETURN node.id AS video_id, node.title AS title, node.platform AS platform, score,
       p.quality AS quality, p.popularity_pct AS popularity_pct
ORDER BY score DESC, video_id
LIMIT $k
